//! How the core's values become IndexedDB rows, and back.
//!
//! | store | row |
//! |-------|-----|
//! | `records` | `{c, i, bv, b, s, x}`: collection, id, base version (plain, for the commit contract), base record, `{state, hlc}` (no `s`: the record is its base), the keys of the collection's declared indexes (`x`, plain rows of live records only: see `ferry_core::query::stored`) |
//! | `outbox` | `{e, v}`: entry id and the entry |
//! | `meta` | `{k: "replica", cid, seq, hlc, dv, v}`: client id, next seq, clock and data version (plain) and the meta |
//! | `conflicts`, `dead_letters` | `{k, v}` |
//!
//! `b`, `s` and `v` are JSON text, or with encryption at rest sealed bytes (`Uint8Array`)
//! bound to the row's identity. Meta (`{k, cid, seq, hlc, v}`) holds no user data and is
//! never sealed, so the commit contract (keep the larger `next_seq` and clock) can be kept
//! inside the transaction.

use crate::crypto::Cipher;
use ferry_core::hlc::Hlc;
use ferry_core::policy::State;
use ferry_core::ports::StoreError;
use ferry_core::protocol::Record;
use ferry_core::query::{row_keys, IndexDecl};
use ferry_core::replica::{LocalRecord, Meta};
use js_sys::{Object, Reflect, Uint8Array};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

/// The key of the single meta row.
pub const META_KEY: &str = "replica";

/// What `s` holds for a record.
#[derive(Serialize, Deserialize)]
struct RecordBody {
    state: State,
    hlc: Hlc,
}

/// [`RecordBody`] serialized from a record in place (the same JSON, nothing copied).
#[derive(Serialize)]
struct RecordBodyRef<'a> {
    state: &'a State,
    hlc: &'a Hlc,
}

/// The plain (unsealed) `records` rows of a batch, for `recordRows` in `commit.js` to build:
/// every string of every row in ONE text, cut at `cuts` (UTF-16 offsets, one per piece), and
/// `[bv, shape]` per record (shape 0: delete, 1: full row, 2: compact row without `s`; 3 and
/// 4: 1 and 2 with the index keys `x` as a last JSON piece). One text crosses into JS
/// instead of four strings and five property sets per record.
#[derive(Default)]
pub struct BulkRecordRows {
    pub text: String,
    pub cuts: Vec<u32>,
    pub shapes: Vec<f64>,
}

impl BulkRecordRows {
    /// The rows of `records` (key and record, `None` = delete); `compact` as in
    /// [`Codec::record_row`].
    pub fn build<'a>(
        records: impl ExactSizeIterator<Item = (&'a (String, String), &'a Option<LocalRecord>)>,
        compact: bool,
        indexes: &[IndexDecl],
    ) -> Result<BulkRecordRows, StoreError> {
        let mut bytes = Vec::with_capacity(records.len() * 256);
        let mut cuts = Vec::with_capacity(records.len() * 4);
        let mut shapes = Vec::with_capacity(records.len() * 2);
        let mut utf16_at = 0u32;
        let mut cut = |bytes: &Vec<u8>, from: usize, cuts: &mut Vec<u32>| {
            utf16_at += utf16_len(&bytes[from..]);
            cuts.push(utf16_at);
        };
        let encode_error =
            |e: serde_json::Error| StoreError::Other(format!("cannot encode a record: {e}"));
        for ((collection, id), record) in records {
            for piece in [collection, id] {
                let from = bytes.len();
                bytes.extend_from_slice(piece.as_bytes());
                cut(&bytes, from, &mut cuts);
            }
            let Some(record) = record else {
                shapes.extend([0.0, 0.0]);
                continue;
            };
            let from = bytes.len();
            serde_json::to_writer(&mut bytes, &record.base).map_err(encode_error)?;
            cut(&bytes, from, &mut cuts);
            let whole = !(compact && is_its_base(record));
            if whole {
                let from = bytes.len();
                let body = RecordBodyRef {
                    state: &record.state,
                    hlc: &record.hlc,
                };
                serde_json::to_writer(&mut bytes, &body).map_err(encode_error)?;
                cut(&bytes, from, &mut cuts);
            }
            let keys = index_keys(indexes, record);
            if let Some(keys) = &keys {
                let from = bytes.len();
                serde_json::to_writer(&mut bytes, keys).map_err(encode_error)?;
                cut(&bytes, from, &mut cuts);
            }
            let shape = if whole { 1.0 } else { 2.0 } + if keys.is_some() { 2.0 } else { 0.0 };
            shapes.extend([record.version() as f64, shape]);
        }
        // Keys and JSON text are UTF-8 from Rust strings and serde_json.
        let text = String::from_utf8(bytes)
            .map_err(|_| StoreError::Other("a record row is not UTF-8".into()))?;
        Ok(BulkRecordRows { text, cuts, shapes })
    }
}

/// The keys a record's row carries under its collection's declared indexes (`None`: no
/// index of its collection, or the record is deleted and no query returns it).
pub fn index_keys(indexes: &[IndexDecl], record: &LocalRecord) -> Option<Vec<serde_json::Value>> {
    if record.state.deleted {
        return None;
    }
    let keys = row_keys(
        indexes,
        &record.collection,
        &record.id,
        &record.state.fields,
    );
    (!keys.is_empty()).then_some(keys)
}

/// A plain (unsealed) `records` row decoded without awaiting anything; `None` for a sealed or
/// malformed row.
pub fn plain_record(row: &JsValue) -> Option<LocalRecord> {
    let text = |k: &str| get(row, k).as_string();
    let (c, i, b) = (text("c")?, text("i")?, text("b")?);
    let s = get(row, "s");
    let s = if s.is_undefined() {
        "null".to_owned()
    } else {
        s.as_string()?
    };
    let json = format!(
        "[{},{},{b},{s}]",
        serde_json::Value::String(c),
        serde_json::Value::String(i)
    );
    let row: PlainRecordRow = serde_json::from_str(&json).ok()?;
    row.try_into().ok()
}

/// How many UTF-16 code units (JS string length) the UTF-8 text `bytes` holds.
fn utf16_len(bytes: &[u8]) -> u32 {
    if bytes.is_ascii() {
        return bytes.len() as u32;
    }
    std::str::from_utf8(bytes)
        .map(|s| s.chars().map(char::len_utf16).sum::<usize>())
        .unwrap_or(bytes.len()) as u32
}

/// Turns values into stored blobs and back, sealing them when a key is configured.
#[derive(Clone, Default)]
pub struct Codec {
    cipher: Option<Cipher>,
}

impl Codec {
    pub fn new(cipher: Option<Cipher>) -> Self {
        Codec { cipher }
    }

    /// Whether values are sealed (encryption at rest).
    pub fn is_sealed(&self) -> bool {
        self.cipher.is_some()
    }

    pub async fn seal<T: Serialize>(&self, aad: &str, value: &T) -> Result<JsValue, StoreError> {
        let json = serde_json::to_string(value)
            .map_err(|e| StoreError::Other(format!("cannot encode {aad}: {e}")))?;
        self.seal_text(aad, &json).await
    }

    /// JSON text as stored: the text itself, or sealed bytes bound to `aad`.
    pub async fn seal_text(&self, aad: &str, json: &str) -> Result<JsValue, StoreError> {
        match &self.cipher {
            None => Ok(JsValue::from_str(json)),
            Some(cipher) => {
                Ok(Uint8Array::from(cipher.seal(aad, json.as_bytes()).await?.as_slice()).into())
            }
        }
    }

    pub async fn open<T: DeserializeOwned>(
        &self,
        aad: &str,
        blob: &JsValue,
    ) -> Result<T, StoreError> {
        let text = self.open_text(aad, blob).await?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("{aad} does not decode: {e}")))
    }

    /// The JSON text of a stored blob, opened when sealed.
    pub async fn open_text(&self, aad: &str, blob: &JsValue) -> Result<String, StoreError> {
        match (&self.cipher, blob.as_string()) {
            (None, Some(text)) => Ok(text),
            (Some(_), Some(_)) => Err(StoreError::Corrupt(format!(
                "{aad} is stored unencrypted, but this database is encrypted"
            ))),
            (Some(cipher), None) if blob.is_instance_of::<Uint8Array>() => {
                let bytes = cipher
                    .open(aad, &blob.unchecked_ref::<Uint8Array>().to_vec())
                    .await?;
                String::from_utf8(bytes)
                    .map_err(|_| StoreError::Corrupt(format!("{aad} is not UTF-8 text")))
            }
            (None, None) if blob.is_instance_of::<Uint8Array>() => Err(StoreError::Corrupt(
                format!("{aad} is encrypted: open Ferry with its encryptionKey"),
            )),
            _ => Err(StoreError::Corrupt(format!(
                "{aad} has an unexpected stored type"
            ))),
        }
    }

    /// A `records` row.
    ///
    /// With `compact`, a record that is exactly its base (no local change: what sync leaves
    /// behind) is stored without `s`; reading derives it from the base. That halves what a
    /// synced record stores, loads and decodes. Only a writer whose base cannot be replaced
    /// by the commit contract (see `IdbStore::set_bases_are_mine`) may write compact rows.
    pub async fn record_row(
        &self,
        record: &LocalRecord,
        compact: bool,
    ) -> Result<Object, StoreError> {
        let (b_aad, s_aad) = record_aads(&record.collection, &record.id);
        let row = Object::new();
        set(&row, "c", &record.collection.as_str().into());
        set(&row, "i", &record.id.as_str().into());
        set(&row, "bv", &JsValue::from_f64(record.version() as f64));
        set(&row, "b", &self.seal(&b_aad, &record.base).await?);
        if !(compact && is_its_base(record)) {
            let body = RecordBodyRef {
                state: &record.state,
                hlc: &record.hlc,
            };
            set(&row, "s", &self.seal(&s_aad, &body).await?);
        }
        Ok(row)
    }

    pub async fn read_record(&self, row: &JsValue) -> Result<LocalRecord, StoreError> {
        let collection = get_string(row, "c")?;
        let id = get_string(row, "i")?;
        let (b_aad, s_aad) = record_aads(&collection, &id);
        let base: Option<Record> = self.open(&b_aad, &get(row, "b")).await?;
        let body = match get(row, "s") {
            s if s.is_undefined() => None,
            s => Some(self.open::<RecordBody>(&s_aad, &s).await?),
        };
        PlainRecordRow(collection, id, base, body).try_into()
    }

    /// A `{k, v}` (or `{e, v}`) row whose value is sealed with `prefix:key` as identity.
    pub async fn keyed_row<T: Serialize>(
        &self,
        key_field: &str,
        prefix: &str,
        key: &str,
        value: &T,
    ) -> Result<Object, StoreError> {
        let row = Object::new();
        set(&row, key_field, &key.into());
        set(
            &row,
            "v",
            &self.seal(&format!("{prefix}:{key}"), value).await?,
        );
        Ok(row)
    }

    pub async fn read_keyed<T: DeserializeOwned>(
        &self,
        key_field: &str,
        prefix: &str,
        row: &JsValue,
    ) -> Result<T, StoreError> {
        let key = get_string(row, key_field)?;
        self.open(&format!("{prefix}:{key}"), &get(row, "v")).await
    }
}

/// The identities the base and the body of a record are sealed with.
fn record_aads(collection: &str, id: &str) -> (String, String) {
    (
        format!("record-base:{collection}\u{0}{id}"),
        format!("record:{collection}\u{0}{id}"),
    )
}

/// The meta row (plain JSON; see the module docs). `cid`, `seq`, `hlc` and `dv` (the app
/// data version) are repeated as plain fields so the commit can keep the larger stored ones
/// without decoding `v`: a tab opened before another migrated the data must not write its
/// older data version back.
pub fn meta_row(meta: &Meta) -> Object {
    let row = Object::new();
    set(&row, "k", &META_KEY.into());
    set(&row, "cid", &meta.client_id.as_str().into());
    set(&row, "seq", &JsValue::from_f64(meta.next_seq as f64));
    set(&row, "hlc", &meta.hlc.to_string().into());
    set(&row, "dv", &JsValue::from_f64(f64::from(meta.data_version)));
    set(
        &row,
        "v",
        &serde_json::to_string(meta).unwrap_or_default().into(),
    );
    row
}

/// Reads the meta row; the plain `seq`, `hlc` and `dv` win over `v`'s when larger, since
/// the commit may have kept them (another tab had moved them on).
pub fn read_meta(row: &JsValue) -> Result<Meta, StoreError> {
    let text = get(row, "v")
        .as_string()
        .ok_or_else(|| StoreError::Corrupt("the meta row has no value".into()))?;
    let mut meta: Meta = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("the meta row does not decode: {e}")))?;
    if let Some(seq) = get(row, "seq").as_f64() {
        meta.next_seq = meta.next_seq.max(seq as u64);
    }
    if let Some(dv) = get(row, "dv").as_f64() {
        meta.data_version = meta.data_version.max(dv as u32);
    }
    if let Some(hlc) = get(row, "hlc").as_string() {
        let stored = Hlc::parse(&hlc)
            .map_err(|e| StoreError::Corrupt(format!("the meta row's clock: {e}")))?;
        if stored > meta.hlc {
            meta.hlc = stored;
        }
    }
    Ok(meta)
}

/// Whether the record is exactly its base (so a compact row can leave out `s`).
fn is_its_base(record: &LocalRecord) -> bool {
    record.base.as_ref().is_some_and(|b| {
        b.deleted == record.state.deleted && b.hlc == record.hlc && b.fields == record.state.fields
    })
}

/// One record row as [`super::load`] receives it in bulk: `[c, i, b, s]` with `b` and `s`
/// decoded in place (`s` is `null` in a compact row).
#[derive(Deserialize)]
pub struct PlainRecordRow(String, String, Option<Record>, Option<RecordBody>);

impl TryFrom<PlainRecordRow> for LocalRecord {
    type Error = StoreError;

    fn try_from(
        PlainRecordRow(collection, id, base, body): PlainRecordRow,
    ) -> Result<Self, StoreError> {
        let (state, hlc) = match (body, &base) {
            (Some(body), _) => (body.state, body.hlc),
            (None, Some(base)) => (State::of(base), base.hlc.clone()),
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "record {collection}/{id} has neither a state nor a base"
                )))
            }
        };
        Ok(LocalRecord {
            collection,
            id,
            base,
            state,
            hlc,
        })
    }
}

pub fn set(row: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(row, &key.into(), value);
}

pub fn get(row: &JsValue, key: &str) -> JsValue {
    Reflect::get(row, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn get_string(row: &JsValue, key: &str) -> Result<String, StoreError> {
    get(row, key)
        .as_string()
        .ok_or_else(|| StoreError::Corrupt(format!("a stored row has no `{key}`")))
}
