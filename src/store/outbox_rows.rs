//! Where outbox entries live in the `outbox` object store: in **segments**, one row holding
//! many entries, so a commit of 10,000 new writes puts a handful of values instead of
//! 10,000 (an IndexedDB put costs about as much for a small value as for a large one).
//!
//! | row | key (`e`) | value |
//! |-----|-----------|-------|
//! | segment | `seg:` + the id of its first entry | `{e, g: 1, v}`: `v` = JSON array of entries (sealed with encryption) |
//! | single (written before segments existed) | the entry id | `{e, v}`: `v` = one entry |
//!
//! Every entry is in exactly one row. New entries of a commit go to new segments of at most
//! [`SEGMENT_CAP`] entries; a changed entry is rewritten in the row that holds it; a removed
//! one leaves its row, and a row left empty is deleted — all in the commit's transaction.
//! To rewrite a row without re-encoding its other entries, the store keeps each row's
//! entries as JSON text ([`OutboxRows`]), rebuilt by every load.
//!
//! Tabs: segment keys are unique (entry ids are). A follower tab only ever adds entries
//! (append-only), so it only writes new segments; the leader rewrites rows it loaded. A row
//! written by another tab since this tab's last load is unknown here and never touched.

use super::rows::{get, set, Codec};
use ferry_core::btree::CollectBTree;
use ferry_core::outbox::OutboxEntry;
use ferry_core::ports::StoreError;
use js_sys::{Array, Object};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use wasm_bindgen::JsValue;

/// The most entries one new segment takes: bounds what rewriting a segment costs when one
/// of its entries changes.
pub const SEGMENT_CAP: usize = 256;

const SEGMENT_PREFIX: &str = "seg:";

/// One stored row's entries, as JSON text by entry id.
#[derive(Clone, Debug, Default)]
struct Row {
    /// A row holding one entry in the per-entry layout.
    single: bool,
    entries: BTreeMap<String, String>,
}

/// What the store holds in `outbox`, as of the last load and this tab's commits since.
#[derive(Debug, Default)]
pub struct OutboxRows {
    rows: HashMap<String, Row>,
    location: HashMap<String, String>,
}

/// The rows one commit writes, and the bookkeeping to apply once it has committed.
pub struct OutboxPlan {
    /// `[key, row or undefined, ...]` for `commit.js`.
    pub writes: Array,
    changed: Vec<(String, Option<Row>)>,
}

impl OutboxRows {
    /// Decodes the stored rows, remembering where each entry lives.
    pub async fn load(
        codec: &Codec,
        stored: &Array,
    ) -> Result<(OutboxRows, Vec<OutboxEntry>), StoreError> {
        let mut rows = OutboxRows::default();
        let mut entries = Vec::new();
        for raw in stored.iter() {
            let key = get(&raw, "e")
                .as_string()
                .ok_or_else(|| StoreError::Corrupt("an outbox row has no key".into()))?;
            let text = codec.open_text(&aad(&key), &get(&raw, "v")).await?;
            let mut row = Row::default();
            if get(&raw, "g").is_truthy() {
                let items: Vec<&RawValue> = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Corrupt(format!("outbox segment {key} does not decode: {e}"))
                })?;
                for item in items {
                    let entry = decode(&key, item.get())?;
                    row.entries
                        .insert(entry.entry_id.clone(), item.get().to_owned());
                    entries.push(entry);
                }
            } else {
                let entry = decode(&key, &text)?;
                row.single = true;
                row.entries.insert(entry.entry_id.clone(), text);
                entries.push(entry);
            }
            for id in row.entries.keys() {
                rows.location.insert(id.clone(), key.clone());
            }
            rows.rows.insert(key, row);
        }
        Ok((rows, entries))
    }

    /// The rows that store `changes` (entry id → new entry, or `None` for removed), still
    /// to be encoded: [`Staged::encode`] awaits (sealing), so it runs without a borrow.
    pub fn stage(
        &self,
        changes: &BTreeMap<String, Option<OutboxEntry>>,
    ) -> Result<Staged, StoreError> {
        let mut touched: BTreeMap<String, Row> = BTreeMap::new();
        let mut new_entries: Vec<(String, String)> = Vec::new();
        for (id, entry) in changes {
            let json = match entry {
                Some(entry) => Some(serde_json::to_string(entry).map_err(|e| {
                    StoreError::Other(format!("cannot encode outbox entry {id}: {e}"))
                })?),
                None => None,
            };
            match (self.location.get(id), json) {
                (Some(key), json) => {
                    let row = touched
                        .entry(key.clone())
                        .or_insert_with(|| self.rows.get(key).cloned().unwrap_or_default());
                    match json {
                        Some(json) => row.entries.insert(id.clone(), json),
                        None => row.entries.remove(id),
                    };
                }
                (None, Some(json)) => new_entries.push((id.clone(), json)),
                // Created and removed between two commits: never stored.
                (None, None) => {}
            }
        }
        for chunk in new_entries.chunks(SEGMENT_CAP) {
            let key = format!("{SEGMENT_PREFIX}{}", chunk[0].0);
            let row = Row {
                single: false,
                entries: chunk.iter().cloned().collect_btree_map(),
            };
            touched.insert(key, row);
        }
        Ok(Staged(touched))
    }
}

/// The rows one commit rewrites, by key (no entries left: delete the row).
pub struct Staged(BTreeMap<String, Row>);

impl Staged {
    /// Encodes (and seals) the rows.
    pub async fn encode(self, codec: &Codec) -> Result<OutboxPlan, StoreError> {
        let touched = self.0;
        let writes = Array::new_with_length((touched.len() * 2) as u32);
        let mut changed = Vec::with_capacity(touched.len());
        for (i, (key, row)) in touched.into_iter().enumerate() {
            let value: JsValue = if row.entries.is_empty() {
                JsValue::UNDEFINED
            } else {
                encode(codec, &key, &row).await?.into()
            };
            writes.set(2 * i as u32, key.as_str().into());
            writes.set(2 * i as u32 + 1, value);
            changed.push((key, (!row.entries.is_empty()).then_some(row)));
        }
        Ok(OutboxPlan { writes, changed })
    }
}

impl OutboxRows {
    /// Takes in a plan whose commit succeeded.
    pub fn apply(&mut self, plan: OutboxPlan) {
        for (key, row) in plan.changed {
            if let Some(old) = self.rows.remove(&key) {
                for id in old.entries.keys() {
                    if self.location.get(id) == Some(&key) {
                        self.location.remove(id);
                    }
                }
            }
            if let Some(row) = row {
                for id in row.entries.keys() {
                    self.location.insert(id.clone(), key.clone());
                }
                self.rows.insert(key, row);
            }
        }
    }

    /// How many rows hold the outbox (for tests).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }
}

fn decode(key: &str, text: &str) -> Result<OutboxEntry, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("outbox row {key} does not decode: {e}")))
}

/// The identity a row's value is sealed with: for a single entry the one it always had.
fn aad(key: &str) -> String {
    format!("outbox:{key}")
}

async fn encode(codec: &Codec, key: &str, row: &Row) -> Result<Object, StoreError> {
    let text = if row.single {
        row.entries.values().next().cloned().unwrap_or_default()
    } else {
        let mut text = String::from("[");
        for (i, json) in row.entries.values().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(json);
        }
        text.push(']');
        text
    };
    let value = Object::new();
    set(&value, "e", &key.into());
    if !row.single {
        set(&value, "g", &JsValue::from_f64(1.0));
    }
    set(&value, "v", &codec.seal_text(&aad(key), &text).await?);
    Ok(value)
}
