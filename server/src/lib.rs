//! ferry-server: Ferry's reference sync server, as a library (the binary is a thin CLI).
//!
//! - [`routes`]: the HTTP API (push, pull, server-sent events, health, metrics, demo token).
//! - [`db`]: SQLite or PostgreSQL storage running ferry-core's apply rules in one transaction
//!   per push, so the server applies exactly the rules the simulation tests.
//! - [`auth`], [`jwt`], [`jwks`]: bearer JWTs (the server's own HS256, or an identity
//!   provider's keys) bound to a tenant; every query is tenant-scoped.
//! - [`permissions`], [`validation`], [`config_file`]: declared per-collection permissions
//!   and JSON Schemas, checked on every push; [`permissions_filter`]: partial sync, what each
//!   user's pull shows.
//! - [`app`]: starting and stopping a server ([`app::start`]).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod data_version;
pub mod db;
pub mod errors;
pub mod heads;
pub mod housekeeping;
pub mod hub;
pub mod jwks;
pub mod jwt;
pub mod limiter;
pub mod metrics;
pub mod permissions;
pub mod permissions_filter;

pub mod priority;
pub mod routes;
pub mod secret;
pub mod serve;
pub mod state;
pub mod validation;

pub use app::{start, RunningServer, StartError};
pub use config::ServerConfig;
