//! Collection priorities for a poor network: which writes go first when not all can.
//!
//! A collection is `critical`, `normal` (the default) or `background`. Unsent entries always
//! go out most urgent first (frozen entries keep going first, in seq order: a retry must not
//! be overtaken by a later seq). While the network is poor ([`is_degraded`]: the last cycles
//! failed and the engine backs off — 429/503 answers, timeouts, lost connections — the round
//! trips are slow, or the browser says the connection saves data or is metered), background
//! entries additionally wait until no critical entry waits, so a constrained link carries
//! what matters. Nothing starves for good: background waits only while critical writes
//! exist, and once the critical outbox is empty it goes like any other.
//!
//! The push names its most urgent priority (`Ferry-Priority`), and ferry-server's limiter
//! keeps part of each tenant's share for critical pushes (PROTOCOL.md §3).

use crate::outbox::OutboxEntry;
use crate::state::SyncState;
use serde::{Deserialize, Serialize};

/// How urgent a collection's writes are. Orders most urgent first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Critical,
    #[default]
    Normal,
    Background,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::Normal, Priority::Background];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::Background => "background",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Its place in [`Priority::ALL`] (0: critical).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the platform says about the connection (the browser's `navigator.connection`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkHints {
    /// The person asked to save data (`saveData`).
    pub save_data: bool,
    /// The connection is metered or cellular, or its effective type is 2g or slower.
    pub metered: bool,
}

/// A round trip slower than this counts as a poor network.
pub const SLOW_ROUND_TRIP_MS: u64 = 3_000;

/// Whether the network counts as poor: failures the engine backs off from, a slow last round
/// trip, or a connection the platform says to spare.
pub fn is_degraded(state: &SyncState, hints: LinkHints, last_round_trip_ms: Option<u64>) -> bool {
    hints.save_data
        || hints.metered
        || state.failures > 0
        || last_round_trip_ms.is_some_and(|ms| ms > SLOW_ROUND_TRIP_MS)
}

/// The entries the next push may choose from, and in which order: frozen entries first (seq
/// order is kept by the batch selection), then unsent ones most urgent first, oldest first
/// within a priority. When `degraded`, background entries are left out while any critical
/// entry waits.
pub fn candidates<'a>(
    entries: impl Iterator<Item = &'a OutboxEntry>,
    priority_of: impl Fn(&str) -> Priority,
    degraded: bool,
) -> Vec<&'a OutboxEntry> {
    let mut all: Vec<(Priority, &OutboxEntry)> =
        entries.map(|e| (priority_of(&e.collection), e)).collect();
    if degraded && all.iter().any(|(p, _)| *p == Priority::Critical) {
        all.retain(|(p, e)| e.is_sent() || *p != Priority::Background);
    }
    crate::sorting::sort_stable_by(&mut all, |(pa, a), (pb, b)| {
        (!a.is_sent(), *pa, &a.entry_id).cmp(&(!b.is_sent(), *pb, &b.entry_id))
    });
    all.into_iter().map(|(_, e)| e).collect()
}

/// How many entries wait per priority (critical, normal, background).
pub fn waiting<'a>(
    entries: impl Iterator<Item = &'a OutboxEntry>,
    priority_of: impl Fn(&str) -> Priority,
) -> [usize; 3] {
    let mut counts = [0; 3];
    for e in entries {
        counts[priority_of(&e.collection).index()] += 1;
    }
    counts
}

/// The most urgent priority among `entries` (what a push names), `Normal` when empty.
pub fn most_urgent<'a>(
    entries: impl Iterator<Item = &'a OutboxEntry>,
    priority_of: impl Fn(&str) -> Priority,
) -> Priority {
    entries
        .map(|e| priority_of(&e.collection))
        .min()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::outbox::SentAs;
    use crate::protocol::OpKind;

    fn entry(id: &str, collection: &str, sent: bool) -> OutboxEntry {
        OutboxEntry {
            entry_id: id.into(),
            collection: collection.into(),
            record_id: id.into(),
            op: OpKind::Create,
            patch: Default::default(),
            hlc: Hlc::default(),
            sent: sent.then(|| SentAs {
                op_id: format!("op-{id}"),
                client_id: "c".into(),
                seq: 1,
                base_version: 0,
            }),
            attempts: 0,
            created_at_ms: 0,
            last_error: None,
            writes: 1,
        }
    }

    fn priority_of(collection: &str) -> Priority {
        match collection {
            "alerts" => Priority::Critical,
            "photos" => Priority::Background,
            _ => Priority::Normal,
        }
    }

    fn ids(list: Vec<&OutboxEntry>) -> Vec<&str> {
        list.into_iter().map(|e| e.entry_id.as_str()).collect()
    }

    #[test]
    fn unsent_entries_go_most_urgent_first_behind_the_frozen_ones() {
        let entries = [
            entry("1", "photos", false),
            entry("2", "notes", false),
            entry("3", "alerts", false),
            entry("0", "photos", true),
        ];
        let order = ids(candidates(entries.iter(), priority_of, false));
        assert_eq!(order, ["0", "3", "2", "1"]);
    }

    #[test]
    fn degraded_background_waits_until_no_critical_entry_waits() {
        let entries = [
            entry("1", "photos", false),
            entry("2", "alerts", false),
            entry("0", "photos", true),
        ];
        // The frozen background entry still goes (its retry must not wait); the unsent one waits.
        assert_eq!(
            ids(candidates(entries.iter(), priority_of, true)),
            ["0", "2"]
        );
        let without_critical = [entry("1", "photos", false), entry("4", "notes", false)];
        assert_eq!(
            ids(candidates(without_critical.iter(), priority_of, true)),
            ["4", "1"],
            "no critical write waits: background goes"
        );
    }

    #[test]
    fn poor_networks_are_recognised() {
        let healthy = SyncState::default();
        assert!(!is_degraded(&healthy, LinkHints::default(), Some(200)));
        assert!(is_degraded(
            &healthy,
            LinkHints::default(),
            Some(SLOW_ROUND_TRIP_MS + 1)
        ));
        let save = LinkHints {
            save_data: true,
            ..LinkHints::default()
        };
        assert!(is_degraded(&healthy, save, None));
        let failing = SyncState {
            failures: 2,
            ..SyncState::default()
        };
        assert!(is_degraded(&failing, LinkHints::default(), None));
    }

    #[test]
    fn counts_and_the_named_priority() {
        let entries = [
            entry("1", "photos", false),
            entry("2", "notes", false),
            entry("3", "photos", true),
        ];
        assert_eq!(waiting(entries.iter(), priority_of), [0, 1, 2]);
        assert_eq!(most_urgent(entries.iter(), priority_of), Priority::Normal);
        assert_eq!(most_urgent([].iter(), priority_of), Priority::Normal);
        assert_eq!(Priority::parse("critical"), Some(Priority::Critical));
        assert_eq!(Priority::parse("urgent"), None);
    }
}
