//! Local writes: validation, the visible change, and keeping the record's outbox entry equal
//! to the net difference between what the server has (or will have) and what the app sees.

use super::{apply_op, key, Event, Key, LocalRecord, Replica};
use crate::error::{CoreError, ErrorCode};
use crate::hlc::Hlc;
use crate::merge::diff_fields;
use crate::outbox::OutboxEntry;
use crate::policy::State;
use crate::protocol::{validate_collection, validate_fields, validate_id, Fields, OpKind};

/// A local write to one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Replace the fields (creates the record if it does not exist).
    Put(Fields),
    /// Set some fields; `null` removes one. The record must exist.
    Patch(Fields),
    /// Delete the record. It must exist.
    Delete,
}

impl Replica {
    /// Applies a local write: visible at once, persisted by the next commit.
    /// Returns the id of the outbox entry that carries it (`None`: it changed nothing).
    /// On error nothing has changed.
    pub fn write(
        &mut self,
        collection: &str,
        id: &str,
        change: Change,
        now_ms: u64,
    ) -> Result<Option<String>, CoreError> {
        if !self.config.collections.contains_key(collection) {
            let known: Vec<&str> = self.config.collections.keys().map(String::as_str).collect();
            return Err(CoreError::new(
                ErrorCode::UnknownCollection,
                format!(
                    "collection `{collection}` is not configured; open Ferry with one of: {}",
                    known.join(", ")
                ),
            ));
        }
        validate_collection("collection", collection)
            .map_err(|e| CoreError::new(ErrorCode::UnknownCollection, e.to_string()))?;
        validate_id("id", id).map_err(|e| CoreError::new(ErrorCode::InvalidId, e.to_string()))?;
        let k = key(collection, id);
        let current = self
            .records
            .get(&k)
            .map(|r| r.state.clone())
            .unwrap_or_else(State::tombstone);
        let next = match change {
            Change::Put(fields) => {
                validate_fields("record", &fields)
                    .map_err(|e| CoreError::new(ErrorCode::InvalidRecord, e.to_string()))?;
                let mut clean = Fields::new();
                crate::apply::apply_patch(&mut clean, &fields);
                State::live(clean)
            }
            Change::Patch(patch) => {
                validate_fields("patch", &patch)
                    .map_err(|e| CoreError::new(ErrorCode::InvalidRecord, e.to_string()))?;
                if current.deleted {
                    return Err(not_found(collection, id, "patch"));
                }
                let next = apply_op(&current, OpKind::Update, &patch);
                validate_fields("record", &next.fields)
                    .map_err(|e| CoreError::new(ErrorCode::InvalidRecord, e.to_string()))?;
                next
            }
            Change::Delete => {
                if current.deleted {
                    return Err(not_found(collection, id, "delete"));
                }
                State::tombstone()
            }
        };
        let hlc = self.tick(now_ms);
        self.set_view(&k, next, hlc.clone());
        Ok(self.reconcile_entry(&k, &hlc, hlc.clone(), now_ms, true))
    }

    /// Sets what the app sees of a record.
    pub(super) fn set_view(&mut self, k: &Key, state: State, hlc: Hlc) {
        let rec = self
            .records
            .entry(k.clone())
            .or_insert_with(|| LocalRecord {
                collection: k.0.clone(),
                id: k.1.clone(),
                base: None,
                state: State::tombstone(),
                hlc: hlc.clone(),
            });
        rec.state = state;
        rec.hlc = hlc;
        self.touch_record(k);
    }

    /// The state the server will hold once the record's sent entries (and, for an
    /// append-only replica, all its entries) are applied.
    pub(super) fn effective_base(&self, k: &Key) -> Option<State> {
        let base = self
            .records
            .get(k)
            .and_then(|r| r.base.as_ref())
            .map(State::of);
        let all = !self.config.coalesce;
        self.entries_of(k)
            .into_iter()
            .filter(|e| all || e.is_sent())
            .fold(base, |state, e| {
                Some(apply_op(
                    &state.unwrap_or_else(State::tombstone),
                    e.op,
                    &e.patch,
                ))
            })
    }

    /// Makes the record's unsent entry carry exactly the difference between the effective
    /// base and the view: creates, rewrites or removes it. `entry_hlc` stamps the entry
    /// (what last-writer-wins compares); `id_hlc` names a new one. Returns the entry id.
    pub(super) fn reconcile_entry(
        &mut self,
        k: &Key,
        entry_hlc: &Hlc,
        id_hlc: Hlc,
        now_ms: u64,
        is_write: bool,
    ) -> Option<String> {
        let from = self.effective_base(k);
        let to = self
            .records
            .get(k)
            .map(|r| r.state.clone())
            .unwrap_or_else(State::tombstone);
        let unsent = match self.config.coalesce {
            true => self.fold_unsent(k),
            false => None,
        };
        let Some((op, patch)) = diff_state(from.as_ref(), &to) else {
            if let Some(id) = unsent {
                self.remove_entry(&id);
                self.events.push(Event::Cancelled { entry_id: id });
            }
            return None;
        };
        match unsent {
            Some(id) => {
                let entry = self.outbox.get_mut(&id).expect("indexed entry exists");
                entry.op = op;
                entry.patch = patch;
                entry.hlc = entry_hlc.clone();
                entry.writes += u32::from(is_write);
                self.dirty.outbox.insert(id.clone());
                Some(id)
            }
            None => {
                let mut entry_id = format!("{id_hlc}{}", self.config.instance);
                // A clock pulled back to the bound may meet a stamp it issued before: a new
                // entry never takes the id of a live one.
                let mut id_hlc = id_hlc;
                while self.outbox.contains_key(&entry_id) {
                    id_hlc.counter = id_hlc.counter.saturating_add(1);
                    entry_id = format!("{id_hlc}{}", self.config.instance);
                }
                self.insert_entry(OutboxEntry {
                    entry_id: entry_id.clone(),
                    collection: k.0.clone(),
                    record_id: k.1.clone(),
                    op,
                    patch,
                    hlc: entry_hlc.clone(),
                    sent: None,
                    attempts: 0,
                    created_at_ms: now_ms,
                    last_error: None,
                    writes: u32::from(is_write),
                });
                Some(entry_id)
            }
        }
    }
}

impl Replica {
    /// Keeps the record's first unsent entry and folds any others into it (they exist when
    /// append-only tabs wrote the record); returns the kept entry's id.
    fn fold_unsent(&mut self, k: &Key) -> Option<String> {
        let unsent: Vec<String> = self
            .entries_of(k)
            .into_iter()
            .filter(|e| !e.is_sent())
            .map(|e| e.entry_id.clone())
            .collect();
        let (first, rest) = unsent.split_first()?;
        for id in rest {
            if let Some(e) = self.remove_entry(id) {
                if let Some(kept) = self.outbox.get_mut(first) {
                    kept.writes += e.writes;
                }
                self.events.push(Event::Coalesced {
                    entry_id: e.entry_id,
                    into: first.clone(),
                });
            }
        }
        Some(first.clone())
    }
}

fn not_found(collection: &str, id: &str, what: &str) -> CoreError {
    CoreError::new(
        ErrorCode::NotFound,
        format!("cannot {what} {collection}/{id}: no such record (use put to create it)"),
    )
}

/// The op that turns `from` (`None`: never existed) into `to`, or `None` if they are equal.
pub(crate) fn diff_state(from: Option<&State>, to: &State) -> Option<(OpKind, Fields)> {
    let from_live = from.filter(|s| !s.deleted);
    match (from_live, to.deleted) {
        (None, true) => None,
        (None, false) => Some((OpKind::Create, to.fields.clone())),
        (Some(_), true) => Some((OpKind::Delete, Fields::new())),
        (Some(f), false) => {
            let patch = diff_fields(&f.fields, &to.fields);
            (!patch.is_empty()).then_some((OpKind::Update, patch))
        }
    }
}
