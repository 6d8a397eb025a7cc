//! The tenant heads this process knows, in memory, so a conditional pull that would find
//! nothing new is answered `304` without reading the database (PROTOCOL.md §4, "Conditional
//! pull"; ARCHITECTURE.md, "Cheap polling").
//!
//! Heads come from pokes (every committed push, and on PostgreSQL every other process's push
//! through LISTEN/NOTIFY) and from heads the database reported. A head is only ever raised:
//! a stale value could answer 304 while there is news. When pokes may have been missed (a
//! lost LISTEN connection) every head is forgotten and the generation moves on, so a
//! database read that started before the loss cannot put back what it saw.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Default)]
struct Known {
    generation: u64,
    heads: HashMap<Arc<str>, u64>,
}

/// Each tenant's newest head as far as this process can vouch for it.
#[derive(Debug, Default)]
pub struct Heads {
    known: Mutex<Known>,
}

impl Heads {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        // A panic elsewhere cannot leave the map inconsistent (every update is one insert).
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `tenant` committed up to `head` (a poke).
    pub fn advance(&self, tenant: &str, head: u64) {
        raise(&mut self.known(), tenant, head);
    }

    /// The generation to pass to [`Heads::learn`]: take it before reading the database.
    pub fn generation(&self) -> u64 {
        self.known().generation
    }

    /// The database said `tenant`'s head is `head`, read after [`Heads::generation`] gave
    /// `generation`. Ignored when pokes may have been missed since.
    pub fn learn(&self, tenant: &str, head: u64, generation: u64) {
        let mut known = self.known();
        if known.generation == generation {
            raise(&mut known, tenant, head);
        }
    }

    /// Pokes may have been missed: nothing known stays trusted.
    pub fn forget_all(&self) {
        let mut known = self.known();
        known.generation += 1;
        known.heads.clear();
    }

    /// The newest head known for `tenant`, if any.
    pub fn get(&self, tenant: &str) -> Option<u64> {
        self.known().heads.get(tenant).copied()
    }
}

fn raise(known: &mut Known, tenant: &str, head: u64) {
    match known.heads.get_mut(tenant) {
        Some(h) => *h = (*h).max(head),
        None => {
            known.heads.insert(tenant.into(), head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_only_rise_and_a_read_from_before_a_loss_is_ignored() {
        let heads = Heads::default();
        assert_eq!(heads.get("t"), None);
        heads.advance("t", 5);
        heads.advance("t", 3);
        assert_eq!(heads.get("t"), Some(5));

        let before = heads.generation();
        heads.forget_all();
        assert_eq!(heads.get("t"), None);
        heads.learn("t", 5, before);
        assert_eq!(heads.get("t"), None, "a read from before the loss");
        heads.learn("t", 6, heads.generation());
        assert_eq!(heads.get("t"), Some(6));
    }
}
