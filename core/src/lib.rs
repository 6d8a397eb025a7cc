//! ferry-core: Ferry's platform-free sync core.
//!
//! Everything that decides *what* happens lives here: the wire protocol, hybrid logical
//! clocks, the outbox, the merge policies, the sync state machine and the server's apply
//! rules. Nothing here does IO or reads a clock: time, randomness, storage and the network
//! come in through the traits in [`ports`], so a seeded simulation replays a whole run.

pub mod answers;
pub mod apply;
pub mod backoff;
pub mod btree;
pub mod changes;
pub mod conditional;
pub mod engine;
pub mod error;
pub mod hlc;
pub mod ids;
#[cfg(feature = "testkit")]
pub mod memory;
pub mod merge;
pub mod metrics;
pub mod outbox;
pub mod outcomes;
pub mod policy;
pub mod ports;
pub mod priority;
pub mod protocol;
pub mod query;
pub mod replica;
pub mod role;
#[cfg(feature = "testkit")]
pub mod server;
#[cfg(feature = "testkit")]
pub mod sim;
pub mod sorting;
pub mod state;
pub mod text_merge;

pub use error::{CoreError, ErrorCode};
pub use hlc::Hlc;
pub use protocol::{Fields, Mutation, OpKind, PullResponse, PushRequest, PushResponse, Record};
