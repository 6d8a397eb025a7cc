//! Checking the server's answers against the protocol before anything is folded in. A
//! misbehaving server or proxy (a page that says `has_more` without advancing, a cursor
//! going backwards, impossible numbers, answers for ops that were never sent, HTML instead
//! of JSON) becomes a typed `protocol_error` that says what was wrong: the engine backs off
//! and the replica is untouched, and the next cycle against a fixed server recovers.

use crate::protocol::{limits, PullResponse, PushRequest, PushResponse, ServerLimits};
use std::collections::HashSet;
use std::fmt;

/// The error code the sync state reports for an answer that breaks the protocol.
pub const PROTOCOL_ERROR: &str = "protocol_error";

/// Longest excerpt of a server's words kept in an error message.
const MAX_DETAIL_CHARS: usize = 160;

/// What was wrong with an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolViolation {
    pub what: String,
}

impl ProtocolViolation {
    fn new(what: impl Into<String>) -> Self {
        ProtocolViolation { what: what.into() }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PROTOCOL_ERROR}: {}", self.what)
    }
}

fn safe_number(what: &str, value: u64) -> Result<(), ProtocolViolation> {
    if value > limits::MAX_SAFE_INTEGER {
        return Err(ProtocolViolation::new(format!(
            "the server sent {what} {value}, beyond 2^53 - 1"
        )));
    }
    Ok(())
}

fn check_identity(epoch: &str, limits: Option<&ServerLimits>) -> Result<(), ProtocolViolation> {
    if epoch.len() > limits::MAX_EPOCH_LEN {
        return Err(ProtocolViolation::new(format!(
            "the server's epoch is {} bytes long (at most {})",
            epoch.len(),
            limits::MAX_EPOCH_LEN
        )));
    }
    if let Some(l) = limits {
        if l.max_push_bytes == 0 || l.max_push_mutations == 0 {
            return Err(ProtocolViolation::new(
                "the server advertised a push limit of zero",
            ));
        }
    }
    Ok(())
}

/// Checks a pull page asked for with `cursor` and `limit`. Run it after the history check
/// (a server that lost history answers with a cursor behind this one, which is a rollback,
/// not a protocol error).
pub fn check_pull(cursor: u64, limit: u32, page: &PullResponse) -> Result<(), ProtocolViolation> {
    check_identity(&page.epoch, page.limits.as_ref())?;
    safe_number("cursor", page.cursor)?;
    safe_number("head", page.head)?;
    safe_number("remaining", page.remaining)?;
    if page.cursor < cursor {
        return Err(ProtocolViolation::new(format!(
            "the pull cursor went backwards from {cursor} to {}",
            page.cursor
        )));
    }
    if page.cursor == cursor && (page.has_more || !page.changes.is_empty()) {
        return Err(ProtocolViolation::new(format!(
            "a page with {} changes (has_more: {}) did not advance the cursor from {cursor}",
            page.changes.len(),
            page.has_more
        )));
    }
    if page.changes.len() > limit as usize {
        return Err(ProtocolViolation::new(format!(
            "a page holds {} changes, more than the {limit} asked for",
            page.changes.len()
        )));
    }
    let mut seen = HashSet::new();
    for r in &page.changes {
        safe_number("a record version", r.version)?;
        if !seen.insert((r.collection.as_str(), r.id.as_str())) {
            return Err(ProtocolViolation::new(format!(
                "a page holds {}/{} twice",
                r.collection, r.id
            )));
        }
    }
    Ok(())
}

/// Checks a push answer against the request it answers.
pub fn check_push(req: &PushRequest, resp: &PushResponse) -> Result<(), ProtocolViolation> {
    check_identity(&resp.epoch, resp.limits.as_ref())?;
    safe_number("cursor", resp.cursor)?;
    let sent: HashSet<&str> = req.mutations.iter().map(|m| m.op_id.as_str()).collect();
    let mut answered = HashSet::new();
    let ops = resp
        .accepted
        .iter()
        .map(|a| a.op_id.as_str())
        .chain(resp.conflicts.iter().map(|c| c.op_id.as_str()))
        .chain(resp.rejected.iter().map(|r| r.op_id.as_str()));
    for op in ops {
        if !sent.contains(op) {
            return Err(ProtocolViolation::new(format!(
                "the push answer names op {}, which was not sent",
                excerpt(op)
            )));
        }
        if !answered.insert(op) {
            return Err(ProtocolViolation::new(format!(
                "the push answer answers op {op} twice"
            )));
        }
    }
    for a in &resp.accepted {
        if a.version == 0 {
            return Err(ProtocolViolation::new(format!(
                "op {} was accepted at version 0",
                a.op_id
            )));
        }
        safe_number("a version", a.version)?;
    }
    for c in &resp.conflicts {
        safe_number("a version", c.server.version)?;
    }
    Ok(())
}

/// The words of an answer that did not decode, made safe to show: a short excerpt with
/// markup removed, so a proxy's HTML error page never lands in `lastError`.
pub fn undecodable(detail: &str) -> ProtocolViolation {
    let looks_like_markup = detail.trim_start().starts_with('<') || detail.contains("<html");
    let what = if looks_like_markup {
        "the server answered with HTML, not a protocol message (a proxy or a misrouted URL?)"
            .to_owned()
    } else {
        format!(
            "the server's answer is not a protocol message ({})",
            excerpt(detail)
        )
    };
    ProtocolViolation::new(what)
}

/// At most [`MAX_DETAIL_CHARS`] characters, without markup or control characters.
fn excerpt(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != '<' && *c != '>')
        .take(MAX_DETAIL_CHARS)
        .collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        format!("{clean}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(cursor: u64, has_more: bool) -> PullResponse {
        PullResponse {
            cursor,
            has_more,
            ..PullResponse::default()
        }
    }

    #[test]
    fn a_page_that_does_not_advance_is_a_protocol_error() {
        let err = check_pull(10, 100, &page(10, true)).unwrap_err();
        assert!(err.to_string().starts_with("protocol_error: "), "{err}");
        assert!(check_pull(10, 100, &page(9, false)).is_err(), "backwards");
        assert!(
            check_pull(10, 100, &page(10, false)).is_ok(),
            "an empty last page"
        );
        assert!(check_pull(10, 100, &page(12, true)).is_ok());
    }

    #[test]
    fn impossible_numbers_are_protocol_errors() {
        let mut p = page(12, false);
        p.remaining = u64::MAX;
        assert!(check_pull(10, 100, &p).is_err());
        let mut p = page(12, false);
        p.epoch = "e".repeat(limits::MAX_EPOCH_LEN + 1);
        assert!(check_pull(10, 100, &p).is_err());
    }

    #[test]
    fn html_never_reaches_the_error_message() {
        let v = undecodable("<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>");
        assert!(!v.to_string().contains('<'), "{v}");
        let v = undecodable(&"x".repeat(10_000));
        assert!(v.to_string().len() < 400, "{v}");
    }

    #[test]
    fn a_push_answer_for_ops_never_sent_is_a_protocol_error() {
        let req = PushRequest {
            client_id: "c".into(),
            mutations: vec![],
        };
        let resp = PushResponse {
            accepted: vec![crate::protocol::Accepted {
                op_id: "ghost".into(),
                version: 1,
            }],
            cursor: 1,
            ..PushResponse::default()
        };
        assert!(check_push(&req, &resp).is_err());
    }
}
