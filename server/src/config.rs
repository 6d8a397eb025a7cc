//! Configuration: the command line (clap, every option also from the environment) and the
//! [`ServerConfig`] a server is started with.

use crate::db::DbOptions;
use crate::housekeeping::Housekeeping;
use crate::limiter::LimitConfig;
use crate::serve::ConnectionLimits;
use crate::validation::Rules;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `ferry-server`: Ferry's reference sync server.
#[derive(Debug, Parser)]
#[command(
    name = "ferry-server",
    version,
    about,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    /// `sqlite://<file>` (embedded, the default) or `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "FERRY_DATABASE",
        default_value = "sqlite://ferry.db",
        global = true
    )]
    pub database: String,
    /// The HMAC secret tokens are signed with (at least 16 bytes). Default for SQLite: one
    /// generated once and kept beside the database file; required for PostgreSQL.
    #[arg(long, env = "FERRY_SECRET", hide_env_values = true, global = true)]
    pub secret: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of the server itself (the default command).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "FERRY_LISTEN",
        default_value = "127.0.0.1:8787",
        global = true
    )]
    pub listen: SocketAddr,
    /// Serve the files of this directory at `/` (index.html for unknown paths).
    #[arg(long = "static", env = "FERRY_STATIC", global = true)]
    pub static_dir: Option<PathBuf>,
    /// Enable `POST /v1/demo/token` (anyone may sign in to tenant `demo`).
    #[arg(long, env = "FERRY_DEMO", global = true)]
    pub demo: bool,
    /// Most requests one tenant may have in flight at once (0: no limit).
    #[arg(
        long,
        env = "FERRY_MAX_IN_FLIGHT",
        default_value_t = 256,
        global = true
    )]
    pub max_in_flight: usize,
    /// Requests per second one tenant may make on average (0: no limit); bursts of twice that.
    #[arg(long, env = "FERRY_RATE_LIMIT", default_value_t = 500.0, global = true)]
    pub rate_limit: f64,
    /// PostgreSQL: run pushes SERIALIZABLE (the default of CockroachDB/YugabyteDB); contended
    /// pushes are then retried on SQLSTATE 40001.
    #[arg(long, env = "FERRY_SERIALIZABLE", global = true)]
    pub serializable: bool,
    /// PostgreSQL connections per process.
    #[arg(
        long,
        env = "FERRY_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is answered 503
    /// `unavailable` (milliseconds).
    #[arg(
        long,
        env = "FERRY_DB_TIMEOUT_MS",
        default_value_t = 2_000,
        global = true
    )]
    pub db_timeout_ms: u64,
    /// Most client connections open at once (keep it below the file-descriptor limit).
    #[arg(
        long,
        env = "FERRY_CONNECTION_LIMIT",
        default_value_t = 512,
        global = true
    )]
    pub connection_limit: usize,
    /// Seconds a client has to send a request's headers, and the longest a keep-alive
    /// connection may sit idle between requests.
    #[arg(
        long,
        env = "FERRY_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub header_timeout_secs: u64,
    /// Seconds a request body may pause between chunks.
    #[arg(
        long,
        env = "FERRY_BODY_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub body_timeout_secs: u64,
    /// Hours an Idempotency-Key stays claimed (0: for ever).
    #[arg(
        long,
        env = "FERRY_IDEMPOTENCY_RETENTION_HOURS",
        default_value_t = 168,
        global = true
    )]
    pub idempotency_retention_hours: u64,
    /// Days an op's outcome is remembered for replays (0: for ever). Keep it longer than any
    /// client stays offline with an unanswered push (PROTOCOL.md §9).
    #[arg(
        long,
        env = "FERRY_OP_RETENTION_DAYS",
        default_value_t = 90,
        global = true
    )]
    pub op_retention_days: u64,
    /// Days after which tombstones are compacted away by the scheduled compaction (0: never;
    /// clients with older cursors then resync from 0).
    #[arg(
        long,
        env = "FERRY_COMPACT_AFTER_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub compact_after_days: u64,
    /// Seconds between two housekeeping passes (compaction and retention).
    #[arg(
        long,
        env = "FERRY_HOUSEKEEPING_INTERVAL_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub housekeeping_interval_secs: u64,
    /// The server config file (TOML): token verification (`[auth]`) and per-collection
    /// permissions and schemas (`[collections.<name>]`); see server/README.md.
    #[arg(long, env = "FERRY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Seconds a shutdown waits for requests in progress before cutting them.
    #[arg(
        long,
        env = "FERRY_SHUTDOWN_GRACE_SECS",
        default_value_t = 10,
        global = true
    )]
    pub shutdown_grace_secs: u64,
}

/// Subcommands besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Print a bearer token for a tenant and user.
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// How long the token is valid.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        /// A role of the user (repeatable); `admin` allows the tenant's admin endpoints.
        #[arg(long)]
        role: Vec<String>,
    },
    /// Give the database a new epoch (history identity). Run it after restoring a backup,
    /// with every server stopped: clients then resync instead of trusting cursors the
    /// restored history does not have (server/README.md, "Restoring a backup").
    RotateEpoch,
    /// Remove a tenant's tombstones logged at or before a cursor. Clients whose cursor is
    /// older then get 410 and resync from 0.
    Compact {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        before_cursor: u64,
    },
}

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub db: DbOptions,
    /// The token signing secret.
    pub secret: Vec<u8>,
    pub static_dir: Option<PathBuf>,
    pub demo: bool,
    pub limits: LimitConfig,
    /// How often server-sent-event streams send a keep-alive comment.
    pub keep_alive: Duration,
    /// Per-collection validation.
    pub rules: Rules,
    /// Timeouts and the cap on open connections.
    pub connections: ConnectionLimits,
    /// Scheduled compaction and retention.
    pub housekeeping: Housekeeping,
    /// Which tokens are trusted and where identity is read from.
    pub auth: crate::jwt::AuthConfig,
    /// The oldest app data version each tenant and collection accepts pushes from.
    pub data_versions: crate::data_version::DataVersions,
}

impl ServerConfig {
    /// A config with the defaults, for `database` and `secret`.
    pub fn new(database: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        ServerConfig {
            db: DbOptions::new(database),
            secret: secret.into(),
            static_dir: None,
            demo: false,
            limits: LimitConfig::default(),
            keep_alive: Duration::from_secs(15),
            rules: Rules::new(),
            connections: ConnectionLimits::default(),
            housekeeping: Housekeeping::default(),
            auth: crate::jwt::AuthConfig::default(),
            data_versions: Default::default(),
        }
    }

    /// The config of `ferry-server [serve]`, with the demo validation rules registered (a
    /// `--config` file replaces them: [`crate::config_file::apply`]).
    pub fn from_args(database: &str, secret: Vec<u8>, args: &ServeArgs) -> Self {
        let mut config = ServerConfig::new(database, secret);
        config.db.max_connections = args.max_connections;
        config.db.serializable = args.serializable;
        config.db.acquire_timeout = Duration::from_millis(args.db_timeout_ms.max(1));
        config.connections = ConnectionLimits {
            header_read_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
            body_read_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            max_connections: args.connection_limit.max(1),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        };
        let age = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        config.housekeeping = Housekeeping {
            idempotency_retention: age(args.idempotency_retention_hours.saturating_mul(3600)),
            op_retention: age(args.op_retention_days.saturating_mul(24 * 3600)),
            compaction_horizon: age(args.compact_after_days.saturating_mul(24 * 3600)),
            interval: Duration::from_secs(args.housekeeping_interval_secs.max(1)),
        };
        config.static_dir = args.static_dir.clone();
        config.demo = args.demo;
        config.limits = LimitConfig::new(args.max_in_flight, args.rate_limit);
        // `--demo` serves the sample app, whose private notes and expense claims show partial
        // sync; without it, every collection stays open to its tenant.
        config.rules = match args.demo {
            true => Rules::new().with_demo_permissions(),
            false => Rules::new().with_demo_rules(),
        };
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_options_may_follow_serve() {
        let cli = Cli::try_parse_from([
            "ferry-server",
            "serve",
            "--listen",
            "0.0.0.0:9000",
            "--connection-limit",
            "64",
            "--demo",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Serve)));
        assert_eq!(cli.serve.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(cli.serve.connection_limit, 64);
        assert!(cli.serve.demo);
        let help = Cli::try_parse_from(["ferry-server", "serve", "--help"])
            .unwrap_err()
            .to_string();
        assert!(help.contains("--header-timeout-secs"), "{help}");
        assert!(help.contains("--listen"), "{help}");
    }

    #[test]
    fn only_demo_mode_restricts_reads() {
        let parse = |extra: &[&str]| {
            let cli = Cli::try_parse_from([&["ferry-server"], extra].concat()).unwrap();
            ServerConfig::from_args("sqlite::memory:", vec![7; 32], &cli.serve)
        };
        let plain = parse(&[]);
        assert!(
            plain.rules.reads_open(),
            "without --demo every read is open"
        );
        let demo = parse(&["--demo"]);
        assert!(!demo.rules.reads_open());
        let private = demo.rules.access("private_notes").unwrap();
        assert_eq!(private.owner_field.as_deref(), Some("owner"));
        assert!(!private.read.contains(&crate::permissions::Grant::Tenant));
        let claims = demo.rules.access("claims").unwrap();
        assert!(claims
            .read
            .contains(&crate::permissions::Grant::Role("manager".into())));
        // The team's collections stay open to the tenant.
        assert_eq!(
            demo.rules.access("notes").unwrap().read,
            vec![crate::permissions::Grant::Tenant]
        );
    }

    #[test]
    fn defaults_and_subcommands_parse() {
        let cli = Cli::try_parse_from(["ferry-server"]).unwrap();
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8787");
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from([
            "ferry-server",
            "token",
            "--tenant",
            "t",
            "--user",
            "u",
            "--database",
            "sqlite://x.db",
        ])
        .unwrap();
        assert_eq!(cli.database, "sqlite://x.db");
        assert!(matches!(
            cli.command,
            Some(Command::Token { ttl_hours: 24, .. })
        ));
        let cli = Cli::try_parse_from([
            "ferry-server",
            "compact",
            "--tenant",
            "t",
            "--before-cursor",
            "9",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Compact {
                before_cursor: 9,
                ..
            })
        ));
    }
}
