//! The bounded clock: local stamps use this device's time corrected by the offset to the
//! server's clock, measured on every answer that carries `server_time`. A device whose clock
//! is wrong by a day stamps with the server's time once it has synced, so last-writer-wins
//! orders its edits as a person expects; remote stamps beyond the clock bound are not
//! adopted as they are (see [`crate::hlc::Hlc::observe`]).

use super::Replica;
use crate::hlc::Hlc;
use crate::protocol::limits::MAX_CLOCK_DRIFT_MS;

/// A measured offset that differs from the stored one by less than this is not stored
/// again (network jitter would otherwise rewrite the meta row on every answer).
pub const CLOCK_RECALIBRATE_MS: u64 = 250;

/// How far beyond the clock bound this replica's clock must have run before it is pulled
/// back to the bound (see [`Replica::bound_clock`]).
pub const CLOCK_PULL_BACK_MS: u64 = 3_600_000;

impl Replica {
    /// This device's time corrected by the measured offset to the server's clock.
    pub fn corrected_now(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add_signed(self.meta.clock_offset_ms)
    }

    /// Measures the offset to the server's clock from one answer: `server_time` (0: not
    /// sent) was read between `sent_at_ms` and `received_at_ms` of this device's clock.
    pub fn calibrate(&mut self, server_time: u64, sent_at_ms: u64, received_at_ms: u64) {
        if server_time == 0 || received_at_ms < sent_at_ms {
            return;
        }
        let local = sent_at_ms + (received_at_ms - sent_at_ms) / 2;
        let offset = i128::from(server_time) - i128::from(local);
        let offset = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        if !self.meta.clock_calibrated
            || self.meta.clock_offset_ms.abs_diff(offset) >= CLOCK_RECALIBRATE_MS
        {
            self.meta.clock_calibrated = true;
            self.meta.clock_offset_ms = offset;
            self.touch_meta();
        }
    }

    /// Pulls this replica's clock back to the bound when it ran ahead of the corrected time
    /// (stamps made before the first calibration on a device whose clock was ahead): its
    /// next writes then order as a person expects against other devices' edits. Only once
    /// the server's time is known: before that, a clock behind its own stamps may as well be
    /// a wall clock set back, and the stamps must not go back with it.
    ///
    /// Only a clock far ahead is pulled back (beyond the bound by [`CLOCK_PULL_BACK_MS`], so
    /// jitter in the measured offset never does), and never below the latest stamp this
    /// replica issued itself: a stamp is never issued twice. (A clock far ahead got there by
    /// reopening over stored stamps of another device's wrong clock, or by its own clock.)
    pub(super) fn bound_clock(&mut self, corrected_now: u64) {
        if !self.meta.clock_calibrated {
            return;
        }
        let bound = corrected_now.saturating_add(MAX_CLOCK_DRIFT_MS);
        let limit = bound.saturating_add(CLOCK_PULL_BACK_MS);
        if self.meta.hlc.wall_ms > limit {
            // The latest own stamp not far ahead: the clock continues after it. Own stamps
            // far ahead (a clock that was a day ahead) are met again only a day later.
            let below = self.own_stamps.partition_point(|s| s.0 <= limit);
            let stored = below.checked_sub(1).map_or((0, 0), |i| self.own_stamps[i]);
            let session = Some(self.own_floor)
                .filter(|s| s.0 <= limit)
                .unwrap_or((0, 0));
            let (wall_ms, counter) = stored.max(session).max((bound, 0));
            self.meta.hlc.wall_ms = wall_ms;
            self.meta.hlc.counter = counter;
            self.touch_meta();
        }
    }

    /// Folds a server stamp into this replica's clock, bounded by the corrected time.
    pub(super) fn observe_stamp(&mut self, remote: &Hlc, now_ms: u64) {
        let now = self.corrected_now(now_ms);
        self.meta.hlc = Hlc::observe(&self.meta.hlc, remote, now, &self.meta.client_id);
    }
}
