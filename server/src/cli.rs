//! What the binary does for each command: serve, print a token, rotate the epoch, or compact
//! a tenant.

use crate::auth::TokenSigner;
use crate::config::{Cli, Command, ServerConfig};
use crate::db::{Db, DbOptions};
use crate::hub::Hub;
use crate::secret;

/// A failure the binary reports before exiting with status 1.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let secret = || secret::resolve(cli.secret.as_deref(), &cli.database);
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => {
            let mut config = ServerConfig::from_args(&cli.database, secret()?, &cli.serve);
            if let Some(path) = &cli.serve.config {
                crate::config_file::apply(&mut config, path)?;
            }
            let listener = tokio::net::TcpListener::bind(cli.serve.listen).await?;
            let server = crate::start(config, listener).await?;
            println!("ferry-server listening on http://{}", server.addr);
            wait_for_signal().await?;
            tracing::info!("shutting down");
            server.shutdown().await;
            Ok(())
        }
        Command::Token {
            tenant,
            user,
            ttl_hours,
            role,
        } => {
            let auth = match &cli.serve.config {
                Some(path) => crate::config_file::FileConfig::load(path)?.auth,
                None => crate::jwt::AuthConfig::default(),
            };
            let signer = TokenSigner::for_config(&secret()?, &auth);
            let roles: Vec<&str> = role.iter().map(String::as_str).collect();
            let token =
                signer.issue_with_roles(&tenant, &user, ttl_hours.saturating_mul(3600), &roles)?;
            println!("{token}");
            Ok(())
        }
        Command::RotateEpoch => {
            let db = Db::connect(&DbOptions::new(cli.database.clone()), Hub::default()).await?;
            let old = db.epoch().to_owned();
            let new = db.rotate_epoch().await?;
            println!("epoch rotated: {old} -> {new}");
            db.close().await;
            Ok(())
        }
        Command::Compact {
            tenant,
            before_cursor,
        } => {
            let db = Db::connect(&DbOptions::new(cli.database.clone()), Hub::default()).await?;
            let report = db.compact(&tenant, before_cursor).await?;
            println!(
                "removed {} tombstones; horizon is now {}",
                report.removed, report.horizon
            );
            db.close().await;
            Ok(())
        }
    }
}

async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
