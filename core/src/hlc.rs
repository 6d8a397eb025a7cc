//! Hybrid logical clock: physical milliseconds plus a counter, tie-broken by the client id.
//!
//! Timestamps order all writes of all clients totally and deterministically, which is what
//! last-writer-wins needs. The wire form is a fixed-width string whose byte order equals the
//! clock order, so servers and tools can compare them without parsing.

use crate::protocol::limits::MAX_CLOCK_DRIFT_MS;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// One hybrid-logical-clock timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch, as the writer's clock (or a later message) saw it.
    pub wall_ms: u64,
    /// Orders events within one millisecond.
    pub counter: u32,
    /// The writing client's id: breaks ties so no two clients' stamps are ever equal.
    pub node: String,
}

impl Ord for Hlc {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.wall_ms, self.counter, &self.node).cmp(&(other.wall_ms, other.counter, &other.node))
    }
}

impl PartialOrd for Hlc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hlc {
    /// A stamp for a local event at physical time `now_ms`, after `last`.
    pub fn tick(last: &Hlc, now_ms: u64, node: &str) -> Hlc {
        if now_ms > last.wall_ms {
            Hlc {
                wall_ms: now_ms,
                counter: 0,
                node: node.to_owned(),
            }
        } else {
            Hlc {
                wall_ms: last.wall_ms,
                counter: last.counter.saturating_add(1),
                node: node.to_owned(),
            }
        }
    }

    /// Folds a remote stamp in, so the next local stamp orders after everything seen —
    /// within the clock bound: a remote stamp more than [`MAX_CLOCK_DRIFT_MS`] ahead of
    /// `now_ms` (this device's calibrated time) moves the clock only up to that bound, so one
    /// device with a clock set ahead cannot drag every device that reads its stamps.
    pub fn observe(last: &Hlc, remote: &Hlc, now_ms: u64, node: &str) -> Hlc {
        let bound = now_ms.saturating_add(MAX_CLOCK_DRIFT_MS);
        let (remote_wall, remote_counter) = if remote.wall_ms > bound {
            (bound, 0)
        } else {
            (remote.wall_ms, remote.counter)
        };
        let wall = now_ms.max(last.wall_ms).max(remote_wall);
        let counter = match (wall == last.wall_ms, wall == remote_wall) {
            (true, true) => last.counter.max(remote_counter).saturating_add(1),
            (true, false) => last.counter.saturating_add(1),
            (false, true) => remote_counter.saturating_add(1),
            (false, false) => 0,
        };
        Hlc {
            wall_ms: wall,
            counter,
            node: node.to_owned(),
        }
    }

    /// Parses the wire form `WWWWWWWWWWWWWWW-CCCCCCCCCC-node`.
    pub fn parse(text: &str) -> Result<Hlc, String> {
        let mut parts = text.splitn(3, '-');
        // `splitn` yields an empty third part for `wall-counter-`.
        let (Some(wall), Some(counter), Some(node)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("hlc `{text}` is not `wall-counter-node`"));
        };
        // An empty node is only ever the zero stamp (`Hlc::default()`), which must round-trip.
        if wall.len() != 15 || counter.len() != 10 || node.len() > 128 {
            return Err(format!("hlc `{text}` has the wrong field widths"));
        }
        let wall_ms = wall
            .parse()
            .map_err(|_| format!("hlc wall time `{wall}` is not a number"))?;
        let counter = counter
            .parse()
            .map_err(|_| format!("hlc counter `{counter}` is not a number"))?;
        Ok(Hlc {
            wall_ms,
            counter,
            node: node.to_owned(),
        })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}-{:010}-{}", self.wall_ms, self.counter, self.node)
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Hlc::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_order_equals_clock_order() {
        let a = Hlc {
            wall_ms: 5,
            counter: 9,
            node: "b".into(),
        };
        let b = Hlc {
            wall_ms: 10,
            counter: 0,
            node: "a".into(),
        };
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(Hlc::parse(&a.to_string()).unwrap(), a);
        assert_eq!(
            Hlc::parse(&Hlc::default().to_string()).unwrap(),
            Hlc::default()
        );
    }

    #[test]
    fn tick_is_monotonic_when_the_wall_clock_goes_back() {
        let a = Hlc::tick(&Hlc::default(), 100, "n");
        let b = Hlc::tick(&a, 50, "n");
        assert!(b > a);
        let remote = Hlc {
            wall_ms: 500,
            counter: 3,
            node: "m".into(),
        };
        let c = Hlc::observe(&b, &remote, 60, "n");
        assert!(c > remote && c > b);
    }

    #[test]
    fn a_stamp_beyond_the_clock_bound_is_not_adopted() {
        let now = 1_700_000_000_000;
        let future = Hlc {
            wall_ms: now + 24 * 3_600_000,
            counter: 7,
            node: "ahead".into(),
        };
        let seen = Hlc::observe(&Hlc::default(), &future, now, "n");
        assert_eq!(
            seen.wall_ms,
            now + MAX_CLOCK_DRIFT_MS,
            "moved to the bound only"
        );
        let within = Hlc {
            wall_ms: now + 5_000,
            counter: 2,
            node: "near".into(),
        };
        let seen = Hlc::observe(&Hlc::default(), &within, now, "n");
        assert!(
            seen > within,
            "a stamp within the bound is adopted as it is"
        );
    }

    #[test]
    fn rejects_malformed_stamps() {
        for bad in [
            "",
            "1-2",
            "x-0000000000-n",
            "000000000000001-00000000000-n",
            "00000000000000x-0000000000-n",
        ] {
            assert!(Hlc::parse(bad).is_err(), "{bad}");
        }
    }
}
