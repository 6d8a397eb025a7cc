//! Per-collection conflict policies: how a local edit and a newer server state combine.
//!
//! The same inputs give the same answer on every device: nothing here reads a clock or
//! depends on arrival order, only on the base, the two states and their hybrid clocks.

use crate::hlc::Hlc;
use crate::merge::merge_fields;
use crate::protocol::{Fields, Record};
use serde::{Deserialize, Serialize};

/// How a collection resolves concurrent edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Three-way merge per field (strings merged as text); overlapping edits go to the inbox.
    #[default]
    MergeFields,
    /// The write with the later hybrid-logical-clock stamp wins (client id breaks ties).
    LastWriterWins,
    /// The server's state stands; a differing local edit goes to the inbox for review.
    ServerWinsReview,
}

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        match name {
            "merge-fields" => Some(Policy::MergeFields),
            "last-writer-wins" => Some(Policy::LastWriterWins),
            "server-wins-review" => Some(Policy::ServerWinsReview),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::MergeFields => "merge-fields",
            Policy::LastWriterWins => "last-writer-wins",
            Policy::ServerWinsReview => "server-wins-review",
        }
    }
}

/// A record's content: its fields, or a tombstone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct State {
    pub fields: Fields,
    pub deleted: bool,
}

impl State {
    pub fn live(fields: Fields) -> State {
        State {
            fields,
            deleted: false,
        }
    }

    pub fn tombstone() -> State {
        State {
            fields: Fields::new(),
            deleted: true,
        }
    }

    pub fn of(record: &Record) -> State {
        State {
            fields: record.fields.clone(),
            deleted: record.deleted,
        }
    }
}

/// What a policy decided for a local edit that met a newer server state.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// The local intent survives as this state (merged, or the later writer); push it.
    Keep { state: State, merged: bool },
    /// The server's state stands; the local edit is superseded by the policy.
    TakeServer,
    /// A person must decide; `fields` names what clashed (empty: the whole record).
    Review { fields: Vec<String> },
}

/// Resolves `local` (edited from `base`, stamped `local_hlc`) against the newer `server`.
pub fn resolve(
    policy: Policy,
    base: Option<&State>,
    local: &State,
    local_hlc: &Hlc,
    server: &Record,
) -> Resolution {
    let server_state = State::of(server);
    if *local == server_state {
        return Resolution::TakeServer;
    }
    match policy {
        Policy::LastWriterWins => {
            if *local_hlc > server.hlc {
                Resolution::Keep {
                    state: local.clone(),
                    merged: false,
                }
            } else {
                Resolution::TakeServer
            }
        }
        Policy::ServerWinsReview => Resolution::Review { fields: Vec::new() },
        Policy::MergeFields => merge_states(base, local, &server_state),
    }
}

fn merge_states(base: Option<&State>, local: &State, server: &State) -> Resolution {
    let unchanged = |s: &State| base.is_some_and(|b| b == s) || (base.is_none() && s.deleted);
    match (local.deleted, server.deleted) {
        (true, true) => Resolution::TakeServer,
        // A delete meets an edit: keep the delete only if the other side did not edit.
        (true, false) if unchanged(server) => Resolution::Keep {
            state: local.clone(),
            merged: false,
        },
        (false, true) if unchanged(local) => Resolution::TakeServer,
        (true, false) | (false, true) => Resolution::Review { fields: Vec::new() },
        (false, false) => {
            let empty = Fields::new();
            let base_fields = base.filter(|b| !b.deleted).map_or(&empty, |b| &b.fields);
            let m = merge_fields(base_fields, &local.fields, &server.fields);
            if !m.conflicting.is_empty() {
                Resolution::Review {
                    fields: m.conflicting,
                }
            } else if m.merged == server.fields {
                Resolution::TakeServer
            } else {
                Resolution::Keep {
                    state: State::live(m.merged),
                    merged: true,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(fields: serde_json::Value, wall_ms: u64, node: &str) -> Record {
        Record {
            collection: "c".into(),
            id: "r".into(),
            version: 2,
            fields: fields.as_object().cloned().unwrap(),
            deleted: false,
            hlc: Hlc {
                wall_ms,
                counter: 0,
                node: node.into(),
            },
        }
    }

    fn live(v: serde_json::Value) -> State {
        State::live(v.as_object().cloned().unwrap())
    }

    #[test]
    fn lww_picks_the_later_clock_and_breaks_ties_by_client() {
        let server = rec(json!({"done": true}), 10, "b");
        let local = live(json!({"done": false}));
        let later = Hlc {
            wall_ms: 10,
            counter: 0,
            node: "c".into(),
        };
        let earlier = Hlc {
            wall_ms: 10,
            counter: 0,
            node: "a".into(),
        };
        assert!(matches!(
            resolve(Policy::LastWriterWins, None, &local, &later, &server),
            Resolution::Keep { .. }
        ));
        assert_eq!(
            resolve(Policy::LastWriterWins, None, &local, &earlier, &server),
            Resolution::TakeServer
        );
    }

    #[test]
    fn server_wins_review_sends_differences_to_review() {
        let server = rec(json!({"amount": 5}), 1, "b");
        let r = resolve(
            Policy::ServerWinsReview,
            None,
            &live(json!({"amount": 6})),
            &Hlc::default(),
            &server,
        );
        assert_eq!(r, Resolution::Review { fields: vec![] });
    }

    #[test]
    fn merge_keeps_both_sides_and_flags_merged() {
        let base = live(json!({"title": "t", "body": "b"}));
        let server = rec(json!({"title": "t2", "body": "b"}), 1, "s");
        let r = resolve(
            Policy::MergeFields,
            Some(&base),
            &live(json!({"title": "t", "body": "b2"})),
            &Hlc::default(),
            &server,
        );
        assert_eq!(
            r,
            Resolution::Keep {
                state: live(json!({"title": "t2", "body": "b2"})),
                merged: true
            }
        );
    }

    #[test]
    fn delete_against_an_edit_needs_review() {
        let base = live(json!({"title": "t"}));
        let server = rec(json!({"title": "t2"}), 1, "s");
        let r = resolve(
            Policy::MergeFields,
            Some(&base),
            &State::tombstone(),
            &Hlc::default(),
            &server,
        );
        assert_eq!(r, Resolution::Review { fields: vec![] });
    }
}
