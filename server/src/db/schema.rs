//! The schema, as ordered migrations shared by SQLite and PostgreSQL (the SQL is portable).
//!
//! Every table leads with `tenant` in its primary key, so a distributed engine can shard all
//! of them by tenant (see ARCHITECTURE.md, "The server, scale-out and distributed
//! PostgreSQL"). A record's `version` is its change position in the tenant's log: pulls read
//! `version > cursor ORDER BY version`.

/// One migration: a version and its statements, run in one transaction.
pub struct Migration {
    pub version: i64,
    pub statements: &'static [&'static str],
}

/// Creates the bookkeeping table of applied migrations.
pub const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS ferry_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)";

/// All migrations, oldest first. Never edit one that shipped: add a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: &[
            // One row per tenant: the head of its change log and its compaction horizon.
            "CREATE TABLE tenants (
            tenant TEXT PRIMARY KEY,
            head BIGINT NOT NULL DEFAULT 0,
            horizon BIGINT NOT NULL DEFAULT 0
        )",
            // The newest state of each record; `version` is its position in the tenant's log.
            "CREATE TABLE records (
            tenant TEXT NOT NULL,
            collection TEXT NOT NULL,
            id TEXT NOT NULL,
            version BIGINT NOT NULL,
            fields TEXT NOT NULL,
            deleted BOOLEAN NOT NULL,
            hlc TEXT NOT NULL,
            PRIMARY KEY (tenant, collection, id)
        )",
            "CREATE UNIQUE INDEX records_by_version ON records (tenant, version)",
            // Every op id processed for good: digest of its body and its outcome.
            "CREATE TABLE ops (
            tenant TEXT NOT NULL,
            op_id TEXT NOT NULL,
            digest BIGINT NOT NULL,
            outcome TEXT NOT NULL,
            version BIGINT,
            code TEXT,
            message TEXT,
            PRIMARY KEY (tenant, op_id)
        )",
            // Each writing client's last applied seq.
            "CREATE TABLE clients (
            tenant TEXT NOT NULL,
            client_id TEXT NOT NULL,
            last_seq BIGINT NOT NULL,
            PRIMARY KEY (tenant, client_id)
        )",
            // Idempotency-Key -> digest of the body first sent with it.
            "CREATE TABLE idempotency_keys (
            tenant TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            body_digest TEXT NOT NULL,
            PRIMARY KEY (tenant, idem_key)
        )",
        ],
    },
    Migration {
        version: 2,
        statements: &[
            // The user a client id is bound to (on its first push; NULL for clients that
            // wrote before the binding existed, bound on their next push).
            "ALTER TABLE clients ADD COLUMN user_id TEXT",
            // Who pushed each op, and when (ms since the Unix epoch): the history says who
            // did what, and retention prunes by age.
            "ALTER TABLE ops ADD COLUMN user_id TEXT",
            "ALTER TABLE ops ADD COLUMN created_at BIGINT",
            "ALTER TABLE idempotency_keys ADD COLUMN created_at BIGINT",
            // Each tenant's head as housekeeping saw it at a time: scheduled compaction
            // turns "older than the horizon" into a cursor with these marks.
            "CREATE TABLE tenant_marks (
                tenant TEXT NOT NULL,
                at_ms BIGINT NOT NULL,
                head BIGINT NOT NULL,
                PRIMARY KEY (tenant, at_ms)
            )",
            // Facts about the database itself: `epoch`, the identity of its history.
            "CREATE TABLE server_meta (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )",
        ],
    },
    Migration {
        version: 3,
        statements: &[
            // Partial sync: who could read any version of the record, as a JSON array of
            // subjects (`tenant`, `role:<name>`, `user:<name>`); NULL for rows written before.
            "ALTER TABLE records ADD COLUMN readers TEXT",
        ],
    },
];
