//! Declared indexes (`indexes: ['updatedAt', ['assignee', 'done']]`) kept as ordered sets
//! of `(key, id)` beside the replica, so a query reads only the rows it returns.
//!
//! An index is built on first use from the collection's live records and then kept up to
//! date from the replica's change sets ([`Indexes::update`]); a change it cannot follow
//! (a reloaded replica) drops it ([`Indexes::forget`]) and the next query rebuilds it.

use super::key::KeyPart;
use super::plan::Records;
use crate::changes::Changes;
use crate::protocol::Fields;
use std::collections::{BTreeSet, HashMap};

/// One declared index: a collection's fields, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDecl {
    pub collection: String,
    pub fields: Vec<String>,
}

/// One built index: its entries in key order, and each record's key (to remove it).
#[derive(Default)]
pub(super) struct Built {
    pub(super) entries: BTreeSet<(Vec<KeyPart>, String)>,
    by_id: HashMap<String, Vec<KeyPart>>,
}

impl Built {
    fn key(decl: &IndexDecl, fields: &Fields) -> Vec<KeyPart> {
        decl.fields
            .iter()
            .map(|f| KeyPart::of(fields.get(f)))
            .collect()
    }

    fn put(&mut self, decl: &IndexDecl, id: &str, fields: Option<&Fields>) {
        if let Some(old) = self.by_id.remove(id) {
            self.entries.remove(&(old, id.to_owned()));
        }
        if let Some(fields) = fields {
            let key = Built::key(decl, fields);
            self.entries.insert((key.clone(), id.to_owned()));
            self.by_id.insert(id.to_owned(), key);
        }
    }
}

/// The declared indexes of every collection, built lazily.
#[derive(Default)]
pub struct Indexes {
    decls: Vec<IndexDecl>,
    built: HashMap<usize, Built>,
}

impl Indexes {
    pub fn new(decls: Vec<IndexDecl>) -> Indexes {
        Indexes {
            decls,
            built: HashMap::new(),
        }
    }

    /// The declarations of `collection`, with their positions.
    pub(super) fn of<'a>(
        &'a self,
        collection: &'a str,
    ) -> impl Iterator<Item = (usize, &'a IndexDecl)> + 'a {
        self.decls
            .iter()
            .enumerate()
            .filter(move |(_, d)| d.collection == collection)
    }

    /// Index `i`, built from `live` (id, fields of every live record of its collection)
    /// if it is not built yet.
    pub(super) fn built<'a, 'r>(
        &mut self,
        i: usize,
        live: impl Iterator<Item = (&'r str, &'r Fields)>,
    ) -> &Built {
        let decl = &self.decls[i];
        self.built.entry(i).or_insert_with(|| {
            let mut b = Built::default();
            for (id, fields) in live {
                b.put(decl, id, Some(fields));
            }
            b
        })
    }

    /// A record changed: its new fields (`None`: deleted or gone) replace its entries in
    /// every built index of its collection.
    pub fn update(&mut self, collection: &str, id: &str, fields: Option<&Fields>) {
        for (i, decl) in self.decls.iter().enumerate() {
            if decl.collection == collection {
                if let Some(b) = self.built.get_mut(&i) {
                    b.put(decl, id, fields);
                }
            }
        }
    }

    /// Follows a change set: listed records are updated one by one, collections changed as a
    /// whole are dropped (and rebuilt on next use).
    pub fn follow(&mut self, changes: &Changes, records: &impl Records) {
        for (collection, ids) in changes.iter() {
            match ids {
                None => self.forget(collection),
                Some(ids) => {
                    for id in ids {
                        self.update(collection, id, records.get(collection, id));
                    }
                }
            }
        }
    }

    /// Drops the built indexes of `collection` (they are rebuilt on next use).
    pub fn forget(&mut self, collection: &str) {
        let decls = &self.decls;
        self.built.retain(|i, _| decls[*i].collection != collection);
    }

    /// How many entries the built indexes of `collection` hold (tests, memory figures).
    pub fn entries(&self, collection: &str) -> usize {
        self.built
            .iter()
            .filter(|(i, _)| self.decls[**i].collection == collection)
            .map(|(_, b)| b.entries.len())
            .sum()
    }
}
