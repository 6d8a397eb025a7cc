//! Conditional pulls: the validator a polling client sends so that a pull which would find
//! nothing new is answered `304 Not Modified` without a page (PROTOCOL.md §4, "Conditional
//! pull").
//!
//! The validator is a strong ETag naming the server history the client follows (its epoch)
//! and the cursor it holds: `"<epoch>.<cursor>"`. The server answers 304 only when that
//! epoch is its own and the tenant's head is exactly that cursor, so a 304 always means "an
//! empty page whose head is your cursor" — which is what [`not_modified_page`] rebuilds on
//! the client, so the engine folds it like any other page.

use crate::protocol::{limits, PullResponse};

/// The `If-None-Match` value for a pull from `cursor` of the history `epoch`; `None` when
/// the client has not heard an epoch yet (a first pull, or a server without epochs), since
/// an unnamed history can never be confirmed.
pub fn pull_etag(epoch: &str, cursor: u64) -> Option<String> {
    valid_epoch(epoch).then(|| format!("\"{epoch}.{cursor}\""))
}

/// The (epoch, cursor) a validator made by [`pull_etag`] names; `None` for anything else,
/// weak validators and lists included (a server then answers with a full page).
pub fn parse_pull_etag(value: &str) -> Option<(&str, u64)> {
    let inner = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    let (epoch, cursor) = inner.rsplit_once('.')?;
    if !valid_epoch(epoch) || cursor.is_empty() || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cursor = cursor.parse::<u64>().ok()?;
    (cursor <= limits::MAX_SAFE_INTEGER).then_some((epoch, cursor))
}

/// The page a `304` stands for: no changes, the cursor unchanged, the head at the cursor and
/// the history the validator named. It carries no server time or limits (the last page's
/// stay in force).
pub fn not_modified_page(epoch: &str, cursor: u64) -> PullResponse {
    PullResponse {
        changes: Vec::new(),
        cursor,
        has_more: false,
        remaining: 0,
        head: cursor,
        epoch: epoch.to_owned(),
        server_time: 0,
        limits: None,
        // No removals, and no view: an empty view leaves the replica's unchanged.
        revoked: Vec::new(),
        view: String::new(),
    }
}

/// Epochs are opaque tokens of ETag-safe characters (the reference server's are hex digits);
/// anything else is never put in a header.
fn valid_epoch(epoch: &str) -> bool {
    !epoch.is_empty()
        && epoch.len() <= limits::MAX_EPOCH_LEN
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_round_trips_and_refuses_what_it_did_not_make() {
        let tag = pull_etag("5d0c", 42).expect("a named history");
        assert_eq!(tag, "\"5d0c.42\"");
        assert_eq!(parse_pull_etag(&tag), Some(("5d0c", 42)));
        assert_eq!(pull_etag("", 42), None);
        assert_eq!(pull_etag("a b", 1), None);
        for other in [
            "W/\"5d0c.42\"",
            "\"5d0c.42\", \"5d0c.43\"",
            "*",
            "\"5d0c.\"",
            "\".42\"",
            "\"5d0c.-1\"",
            "\"5d0c.9007199254740992\"",
            "5d0c.42",
        ] {
            assert_eq!(parse_pull_etag(other), None, "{other}");
        }
    }

    #[test]
    fn not_modified_page_keeps_the_cursor() {
        let page = not_modified_page("e1", 7);
        assert!(page.changes.is_empty() && !page.has_more);
        assert_eq!((page.cursor, page.head, page.epoch.as_str()), (7, 7, "e1"));
    }
}
