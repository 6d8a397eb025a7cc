//! App-level data migrations: moving what a device stores from one data version (the shape
//! of the app's records) to the next, once, atomically.
//!
//! The app's function rewrites one record's fields. It runs over every live record's view
//! (what the app sees), every conflict's local side and every dead letter's desired state,
//! so the app only ever sees the new shape. A record's base — the last server state this
//! device knows — is NOT rewritten: it must stay what the server holds, or the next
//! difference would be computed against a state the server never had. So a migrated view
//! differs from its base like a local write does, and the record's unsent outbox entry is
//! recomputed as that difference: a pending change now speaks the new shape, and a record
//! with no pending change gets an entry that takes its new shape to the server (removing the
//! old fields), so the server converges to the new shapes as devices upgrade. Such an entry
//! carries the record's own stamp (the migrated content is as old as what it rewrote), so
//! under last-writer-wins it never beats a newer edit made elsewhere.
//!
//! Frozen (sent) entries are not touched: a retry must be byte-for-byte the first attempt or
//! the server's replay by op id breaks. The effective base applies them on top of the base,
//! so the recomputed unsent entry carries whatever corrects their old shape.
//!
//! Two phases: every new value is computed first, and only when all succeeded is anything
//! changed, so a failing migration leaves the replica (and, since nothing is committed, the
//! store) exactly as it was. The new data version goes into the same [`WriteBatch`] as the
//! migrated rows: a tab that dies midway has committed nothing, and the next open runs the
//! migration again over the untouched data — it takes effect exactly once.
//!
//! [`WriteBatch`]: super::WriteBatch

use super::writes::diff_state;
use super::{Key, Replica};
use crate::error::{CoreError, ErrorCode};
use crate::policy::State;
use crate::protocol::{validate_fields, Fields};

/// Why the app's function refused a record: its message (the JS adapter passes the thrown
/// error's text through).
pub type MigrationRefusal = String;

/// The error of opening data a newer release of the app migrated (`stored` > `app`).
pub fn data_too_new(stored: u32, app: u32) -> CoreError {
    CoreError::new(
        ErrorCode::DataTooNew,
        format!(
            "the stored data is at version {stored}, newer than this app's version {app}: a newer release of the \
             app migrated it; update the app (or open with version {stored})"
        ),
    )
}

/// What a migration changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The data version before.
    pub from: u32,
    /// Records whose view the function rewrote.
    pub records: usize,
    /// Unsent outbox entries recomputed (created, rewritten or dropped) for the new shape.
    pub entries: usize,
}

/// One record's new view, computed before anything changes.
struct NewRecord {
    key: Key,
    state: State,
}

impl Replica {
    /// The version of the app's data shapes this replica stores (0: never migrated).
    pub fn data_version(&self) -> u32 {
        self.meta.data_version
    }

    /// Moves every stored shape from [`Replica::data_version`] to `to` with `f(collection,
    /// id, fields)`. Nothing changes on error: [`ErrorCode::MigrationFailed`] when `f`
    /// refuses a record or returns fields a record may not have, and
    /// [`ErrorCode::DataTooNew`] when the stored version is newer than `to` (an older
    /// release of the app opened data a newer one migrated).
    pub fn migrate(
        &mut self,
        to: u32,
        now_ms: u64,
        mut f: impl FnMut(&str, &str, Fields) -> Result<Fields, MigrationRefusal>,
    ) -> Result<Migrated, CoreError> {
        let from = self.meta.data_version;
        if from > to {
            return Err(data_too_new(from, to));
        }
        if from == to {
            return Ok(Migrated {
                from,
                ..Migrated::default()
            });
        }
        let mut call = |collection: &str, id: &str, fields: &Fields| -> Result<Fields, CoreError> {
            let out = f(collection, id, fields.clone()).map_err(|why| {
                CoreError::new(
                    ErrorCode::MigrationFailed,
                    format!("migrating {collection}/{id} from version {from} to {to} failed: {why}; nothing was changed"),
                )
            })?;
            validate_fields("migrated record", &out).map_err(|e| {
                CoreError::new(
                    ErrorCode::MigrationFailed,
                    format!("migrating {collection}/{id} from version {from} to {to} gave a record Ferry cannot store: {e}; nothing was changed"),
                )
            })?;
            Ok(out)
        };
        let state_of = |call: &mut dyn FnMut(&str, &str, &Fields) -> Result<Fields, CoreError>,
                        c: &str,
                        i: &str,
                        s: &State|
         -> Result<State, CoreError> {
            Ok(match s.deleted {
                true => s.clone(),
                false => State::live(call(c, i, &s.fields)?),
            })
        };

        // Phase 1: compute everything.
        let mut records = Vec::new();
        for (k, rec) in &self.records {
            let state = state_of(&mut call, &k.0, &k.1, &rec.state)?;
            if state != rec.state {
                records.push(NewRecord {
                    key: k.clone(),
                    state,
                });
            }
        }
        let mut conflicts = Vec::new();
        for (id, c) in &self.conflicts {
            let mut c2 = c.clone();
            // Only the local side: the base and the server's side are server states.
            c2.local = state_of(&mut call, &c.collection, &c.record_id, &c.local)?;
            if &c2 != c {
                conflicts.push((id.clone(), c2));
            }
        }
        let mut letters = Vec::new();
        for (id, d) in &self.dead_letters {
            let desired = state_of(&mut call, &d.collection, &d.record_id, &d.desired)?;
            if desired != d.desired {
                let mut d2 = d.clone();
                d2.desired = desired;
                letters.push((id.clone(), d2));
            }
        }

        // Phase 2: apply; nothing below can fail.
        let mut report = Migrated {
            from,
            records: records.len(),
            entries: 0,
        };
        for new in records {
            let rec = self
                .records
                .get_mut(&new.key)
                .expect("computed from a stored record");
            rec.state = new.state;
            self.touch_record(&new.key);
        }
        // Every record with a pending change, and every record whose migrated view now
        // differs from what the server will hold, gets its unsent entry recomputed.
        let keys: Vec<Key> = self.records.keys().cloned().collect();
        for k in keys {
            let unsent_hlc = self
                .entries_of(&k)
                .into_iter()
                .find(|e| !e.is_sent())
                .map(|e| e.hlc.clone());
            let view = self.records[&k].state.clone();
            let needs = unsent_hlc.is_some()
                || diff_state(self.effective_base(&k).as_ref(), &view).is_some();
            if !needs {
                continue;
            }
            let hlc = match unsent_hlc {
                Some(hlc) => hlc,
                None => self.records[&k].hlc.clone(),
            };
            let before: Vec<_> = self.entries_of(&k).into_iter().cloned().collect();
            self.reconcile_entry(&k, &hlc, hlc.clone(), now_ms, false);
            let after: Vec<_> = self.entries_of(&k).into_iter().cloned().collect();
            if before != after {
                report.entries += 1;
            }
        }
        for (id, c) in conflicts {
            self.conflicts.insert(id.clone(), c);
            self.dirty.conflicts.insert(id);
        }
        for (id, d) in letters {
            self.dead_letters.insert(id.clone(), d);
            self.dirty.dead_letters.insert(id);
        }
        self.meta.data_version = to;
        self.touch_meta();
        Ok(report)
    }
}
