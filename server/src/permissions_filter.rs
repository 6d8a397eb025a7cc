//! Partial sync: what one user's pull shows of each row of the tenant's change log
//! (ARCHITECTURE.md, "Partial sync").
//!
//! The log stays one per tenant and is filtered on the way out. Each row is judged on the
//! record's newest state ([`View::sight`]): readable → sent whole; not readable, but the
//! user was among its former readers → a removal (collection and id only); otherwise hidden.
//! Former readers are kept per record as *subjects* (`tenant`, `role:<name>`,
//! `user:<name>`), the union over every version ([`subjects`]), written by each push in the
//! `readers` column. Role grants depend on the token rather than the record, so a change of
//! the user's roles (or of the config's read grants) is detected by a fingerprint
//! ([`View::fingerprint`]) and answered with a resync (410 `permissions_changed`).

use crate::auth::Identity;
use crate::permissions::{CollectionAccess, Reader};
use crate::validation::Rules;
use ferry_core::protocol::{fnv1a64, Fields, Record};
use std::collections::BTreeSet;

/// The subject every user of the tenant has.
pub const TENANT: &str = "tenant";

/// Who may read a record holding `fields` under `access`, as subjects: the permission
/// rules' own answer ([`CollectionAccess::readers`]), spelled as the `readers` column keeps it.
pub fn subjects(access: &CollectionAccess, fields: &Fields) -> BTreeSet<String> {
    access
        .readers(fields)
        .into_iter()
        .map(|reader| match reader {
            Reader::Tenant => TENANT.to_owned(),
            Reader::Role(role) => format!("role:{role}"),
            Reader::User(user) => format!("user:{user}"),
        })
        .collect()
}

/// The `readers` column after a write: what it held (`None`: nothing yet, or unreadable
/// text, which is replaced) joined with the readers of the new state.
pub fn join_readers(stored: Option<&str>, added: BTreeSet<String>) -> String {
    let mut all = stored.and_then(decode_readers).unwrap_or_default();
    all.extend(added);
    serde_json::to_string(&all).unwrap_or_else(|_| "[]".into())
}

/// The `readers` column a write of `new` leaves: what was `stored`, the readers of the
/// `previous` state (rows written before the column existed hold none) and of the new one.
pub fn next_readers(
    rules: &Rules,
    previous: Option<&Record>,
    stored: Option<&str>,
    new: &Record,
) -> String {
    let mut added = BTreeSet::new();
    if let Some(access) = rules.access(&new.collection) {
        if let Some(previous) = previous {
            added.extend(subjects(&access, &previous.fields));
        }
        added.extend(subjects(&access, &new.fields));
    }
    join_readers(stored, added)
}

/// A `readers` column value: a JSON array of subjects.
pub fn decode_readers(text: &str) -> Option<BTreeSet<String>> {
    serde_json::from_str(text).ok()
}

/// How a log row appears in one user's pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// Sent as it is (a readable record, or the tombstone of a record the user could read).
    Whole,
    /// Sent as a removal: the user could read an earlier version but not this one.
    Removal,
    /// Not sent: the user never could read it. Its position is still passed.
    Hidden,
}

/// One user's view of the tenant's log: the rules bound to their identity.
#[derive(Clone, Debug)]
pub struct View {
    who: Identity,
    rules: Rules,
    subjects: BTreeSet<String>,
}

impl View {
    pub fn new(rules: &Rules, who: &Identity) -> Self {
        let mut subjects: BTreeSet<String> =
            who.roles.iter().map(|r| format!("role:{r}")).collect();
        subjects.insert(format!("user:{}", who.user));
        subjects.insert(TENANT.to_owned());
        View {
            who: who.clone(),
            rules: rules.clone(),
            subjects,
        }
    }

    /// Whether this user may read everything of the tenant (no narrower read grant).
    pub fn sees_everything(&self) -> bool {
        self.rules.reads_open()
    }

    pub fn user(&self) -> &str {
        &self.who.user
    }

    /// How the row holding `record` (with its `readers` column) appears to this user. A row
    /// without readable `readers` (written before the column existed) is treated as readable
    /// once by everyone: a removal of a record a device never had is a no-op, while keeping a
    /// record a device should drop would be a leak.
    pub fn sight(&self, record: &Record, readers: Option<&str>) -> Sight {
        if self.rules.may_read(&self.who, record) {
            return Sight::Whole;
        }
        let former = match readers.and_then(decode_readers) {
            Some(set) => !set.is_disjoint(&self.subjects),
            None => true,
        };
        match (former, record.deleted) {
            (false, _) => Sight::Hidden,
            (true, true) => Sight::Whole,
            (true, false) => Sight::Removal,
        }
    }

    /// A digest of everything besides the records that decides what this user sees: their
    /// roles and the config's read grants. When it changes, the user's devices resync.
    pub fn fingerprint(&self) -> String {
        // Only roles a read grant names: a role that opens nothing changes nothing.
        let named = self.rules.read_roles();
        let mut roles: Vec<&String> = self
            .who
            .roles
            .iter()
            .filter(|r| named.contains(*r))
            .collect();
        roles.sort();
        roles.dedup();
        let roles: Vec<&str> = roles.into_iter().map(String::as_str).collect();
        let text = format!("{}|{}", roles.join(","), self.rules.read_policy());
        format!("{:016x}", fnv1a64(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::hlc::Hlc;
    use serde_json::{json, Value};

    fn who(user: &str, roles: &[&str]) -> Identity {
        Identity {
            tenant: "t".into(),
            user: user.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn rules() -> Rules {
        Rules::from_toml(
            r#"
            [collections.notes]
            read = ["owner", "users_in:shared_with", "role:manager"]
            "#,
        )
        .unwrap()
    }

    fn note(fields: Value, deleted: bool) -> Record {
        Record {
            collection: "notes".into(),
            id: "n1".into(),
            version: 3,
            fields: fields.as_object().unwrap().clone(),
            deleted,
            hlc: Hlc::default(),
        }
    }

    #[test]
    fn subjects_name_owner_listed_users_and_roles() {
        let access = rules().access("notes").unwrap();
        let fields = json!({"owner": "alice", "shared_with": ["bob", 7]});
        let got = subjects(&access, fields.as_object().unwrap());
        let want: BTreeSet<String> = ["user:alice", "user:bob", "role:manager"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want);
        let open = Rules::new().access("anything").unwrap();
        assert_eq!(
            subjects(&open, &Fields::new()),
            BTreeSet::from([TENANT.to_owned()])
        );
    }

    #[test]
    fn readers_accumulate_across_versions() {
        let first = join_readers(None, BTreeSet::from(["user:bob".to_owned()]));
        let second = join_readers(Some(&first), BTreeSet::from(["user:alice".to_owned()]));
        assert_eq!(second, r#"["user:alice","user:bob"]"#);
        assert_eq!(join_readers(Some("not json"), BTreeSet::new()), "[]");
    }

    #[test]
    fn sight_sends_readable_removes_formerly_readable_hides_the_rest() {
        let rules = rules();
        let unshared = note(json!({"owner": "alice", "shared_with": []}), false);
        let history = r#"["role:manager","user:alice","user:bob"]"#;
        let alice = View::new(&rules, &who("alice", &[]));
        let bob = View::new(&rules, &who("bob", &[]));
        let carol = View::new(&rules, &who("carol", &[]));
        assert_eq!(alice.sight(&unshared, Some(history)), Sight::Whole);
        assert_eq!(bob.sight(&unshared, Some(history)), Sight::Removal);
        assert_eq!(carol.sight(&unshared, Some(history)), Sight::Hidden);
        // A tombstone goes, as a tombstone, to former readers only.
        let gone = note(json!({}), true);
        assert_eq!(bob.sight(&gone, Some(history)), Sight::Whole);
        assert_eq!(carol.sight(&gone, Some(history)), Sight::Hidden);
        // Unknown history: a removal rather than a possible leak.
        assert_eq!(carol.sight(&unshared, None), Sight::Removal);
    }

    #[test]
    fn fingerprint_follows_roles_and_read_grants_only() {
        let rules = rules();
        let plain = View::new(&rules, &who("carol", &[])).fingerprint();
        let manager = View::new(&rules, &who("carol", &["manager"])).fingerprint();
        assert_ne!(plain, manager);
        assert_eq!(
            manager,
            View::new(&rules, &who("carol", &["manager", "manager"])).fingerprint()
        );
        let clerk = View::new(&rules, &who("carol", &["clerk"])).fingerprint();
        assert_eq!(plain, clerk, "a role no read grant names changes nothing");
        let other = Rules::from_toml("[collections.notes]\nread = [\"owner\"]\n").unwrap();
        assert_ne!(plain, View::new(&other, &who("carol", &[])).fingerprint());
    }
}
