//! What one mutation changes, apart from who sends it: the request-building runs the suites
//! share (`create("notes", "n1", patch)`, then `.mutation(op_id, client, seq)`), so a test
//! names only what differs between its writes.

use serde_json::{json, Value};

/// One mutation's target and content.
#[derive(Clone, Debug)]
pub struct Write {
    pub collection: String,
    pub id: String,
    pub op: &'static str,
    pub base: u64,
    pub patch: Value,
}

pub fn create(collection: &str, id: &str, patch: Value) -> Write {
    Write::new("create", collection, id, 0, patch)
}

pub fn update(collection: &str, id: &str, base: u64, patch: Value) -> Write {
    Write::new("update", collection, id, base, patch)
}

pub fn delete(collection: &str, id: &str, base: u64) -> Write {
    Write::new("delete", collection, id, base, json!({}))
}

impl Write {
    pub fn new(op: &'static str, collection: &str, id: &str, base: u64, patch: Value) -> Write {
        Write {
            collection: collection.to_owned(),
            id: id.to_owned(),
            op,
            base,
            patch,
        }
    }

    /// The mutation as `client` sends it, with its op id and seq.
    pub fn mutation(&self, op_id: &str, client: &str, seq: u64) -> Value {
        super::mutation(
            op_id,
            client,
            seq,
            &self.collection,
            &self.id,
            self.op,
            self.base,
            self.patch.clone(),
        )
    }
}
