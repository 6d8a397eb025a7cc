//! The network: the `fetch` transport of the core's [`ferry_core::ports::Transport`] and the
//! server-sent events stream that pokes a sync when something changed on the server.

mod http;
mod live;

pub use http::{parse_retry_after, FetchTransport, MAX_RETRY_AFTER_MS};
pub use live::LiveStream;

/// The default request timeout, in milliseconds.
pub fn http_timeout_default() -> u32 {
    http::DEFAULT_TIMEOUT_MS
}
