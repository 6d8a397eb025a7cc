//! Ferry's browser engine: the ports of `ferry-core` implemented for the browser (IndexedDB
//! store, `fetch` transport, WebCrypto encryption at rest, Web Locks leadership and a
//! BroadcastChannel between tabs) and the JavaScript API built with wasm-bindgen.
//!
//! Code map:
//! - [`store`]: the IndexedDB [`ferry_core::ports::Store`] (schema, rows, commit contract).
//! - [`crypto`]: AES-GCM sealing of stored record fields and outbox payloads.
//! - [`transport`]: the `fetch` [`ferry_core::ports::Transport`] and the live poke stream.
//! - [`platform`]: clock, entropy, the app's token callback, timers and global scope access.
//! - [`tabs`]: leader election and change notices between tabs.
//! - [`client`]: one open Ferry: the engine, group commit, the network loop, live queries.
//! - [`api`]: the JS classes (`Ferry`, `Observable`, `Conflict`, `DeadLetter`).
//! - [`interop`]: conversions between JS values and the core's types, and JS errors.
//! - [`subject`]: the value and subscribers behind every observable.
//!
//! Everything here is browser-only: on other targets the crate is empty, so the workspace's
//! native `cargo test` never needs a browser.
#![cfg(target_arch = "wasm32")]

pub mod api;
pub mod client;
pub mod crypto;
pub mod interop;
pub mod platform;
pub mod store;
pub mod subject;
pub mod tabs;
pub mod transport;
