//! Declared permissions: per collection, who may read, create, update and delete a record
//! ([`Grant`]s, from the `[collections.<name>]` tables of the server config file), and the
//! owner field the server sets on create and keeps immutable.
//!
//! A user may do something when any grant of the action admits them. Grants are judged on the
//! record as stored, never on the record a write would produce: otherwise a user could add
//! themself to a share list to gain the right to write it. `update` and `delete` also need
//! `read`: nobody changes what they cannot see.

use crate::auth::Identity;
use ferry_core::protocol::{Fields, Mutation, OpKind, Record};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// Who an action is open to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Every user of the tenant.
    Tenant,
    /// The user named in the record's owner field (on create: the creator).
    Owner,
    /// Users listed in this field of the record (a user name or a list of them).
    UsersIn(String),
    /// Users whose token carries this role.
    Role(String),
}

impl std::str::FromStr for Grant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "tenant" => Ok(Grant::Tenant),
            None if text == "owner" => Ok(Grant::Owner),
            Some(("users_in", field)) if !field.is_empty() => Ok(Grant::UsersIn(field.into())),
            Some(("role", role)) if !role.is_empty() => Ok(Grant::Role(role.into())),
            _ => Err(format!(
                "unknown grant `{text}`: expected `tenant`, `owner`, `users_in:<field>` or `role:<name>`"
            )),
        }
    }
}

/// An action on a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One `[collections.<name>]` table as written in the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSection {
    pub read: Option<Vec<String>>,
    pub create: Option<Vec<String>>,
    pub update: Option<Vec<String>>,
    pub delete: Option<Vec<String>>,
    /// The field holding the owner's user name (default `owner`).
    pub owner_field: Option<String>,
    /// A JSON Schema (as a TOML table) every stored record of the collection must satisfy.
    pub schema: Option<toml::Table>,
    /// Messages for schema failures, keyed by the failing keyword's schema path
    /// (`/properties/amount/minimum`).
    #[serde(default)]
    pub messages: HashMap<String, String>,
}

/// The permissions of one collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionAccess {
    pub read: Vec<Grant>,
    pub create: Vec<Grant>,
    pub update: Vec<Grant>,
    pub delete: Vec<Grant>,
    /// Set on create and immutable afterwards; `None` when no grant speaks of an owner and
    /// the config names no owner field (the record then carries none).
    pub owner_field: Option<String>,
}

fn grants(list: &[String]) -> Result<Vec<Grant>, String> {
    list.iter().map(|g| g.parse()).collect()
}

impl CollectionAccess {
    /// The permissions a section declares. Omitted: `read` and `create` are open to the
    /// tenant, `update` follows `read` and `delete` follows `update`.
    pub fn from_section(section: &CollectionSection) -> Result<Self, String> {
        let tenant = vec![Grant::Tenant];
        let read = match &section.read {
            Some(list) => grants(list)?,
            None => tenant.clone(),
        };
        let create = match &section.create {
            Some(list) => grants(list)?,
            None => tenant,
        };
        let update = match &section.update {
            Some(list) => grants(list)?,
            None => read.clone(),
        };
        let delete = match &section.delete {
            Some(list) => grants(list)?,
            None => update.clone(),
        };
        let mentions_owner = [&read, &create, &update, &delete]
            .iter()
            .any(|list| list.contains(&Grant::Owner));
        let owner_field = match &section.owner_field {
            Some(field) => Some(field.clone()),
            None => mentions_owner.then(|| "owner".to_owned()),
        };
        Ok(CollectionAccess {
            read,
            create,
            update,
            delete,
            owner_field,
        })
    }

    /// Tenant-wide access, no owner: what undeclared collections get.
    pub fn tenant_wide() -> Self {
        CollectionAccess {
            read: vec![Grant::Tenant],
            create: vec![Grant::Tenant],
            update: vec![Grant::Tenant],
            delete: vec![Grant::Tenant],
            owner_field: None,
        }
    }

    fn grants(&self, action: Action) -> &[Grant] {
        match action {
            Action::Read => &self.read,
            Action::Create => &self.create,
            Action::Update => &self.update,
            Action::Delete => &self.delete,
        }
    }

    /// Whether `who` may do `action` on a record with `fields` (for create: the fields the
    /// patch sets, the creator being the owner).
    pub fn allows(&self, who: &Identity, action: Action, fields: &Fields) -> bool {
        self.grants(action).iter().any(|grant| match grant {
            Grant::Tenant => true,
            Grant::Role(role) => who.has_role(role),
            Grant::Owner if action == Action::Create => true,
            Grant::Owner => {
                self.owner_field
                    .as_ref()
                    .and_then(|f| fields.get(f))
                    .and_then(Value::as_str)
                    == Some(who.user.as_str())
            }
            Grant::UsersIn(field) => lists_user(fields.get(field), &who.user),
        })
    }

    /// Whether `who` may read a stored record.
    pub fn may_read(&self, who: &Identity, record: &Record) -> bool {
        !record.deleted && self.allows(who, Action::Read, &record.fields)
    }

    /// Why `who` may not make `m` on `current` (the stored record), if they may not.
    pub fn refusal(
        &self,
        who: &Identity,
        m: &Mutation,
        current: Option<&Record>,
    ) -> Option<String> {
        let live = current.filter(|r| !r.deleted);
        let action = match m.op {
            OpKind::Create => Action::Create,
            OpKind::Update => Action::Update,
            OpKind::Delete => Action::Delete,
        };
        let what = format!("`{}` record `{}`", m.collection, m.record_id);
        match live {
            Some(record) => {
                // A create of a live record is a conflict, which would show the record.
                if !self.allows(who, Action::Read, &record.fields) {
                    return Some(format!("you may not read {what}"));
                }
                if action != Action::Create && !self.allows(who, action, &record.fields) {
                    return Some(format!("you may not {} {what}", action.verb()));
                }
            }
            None if action == Action::Create && !self.allows(who, Action::Create, &m.patch) => {
                return Some(format!("you may not create {what}"));
            }
            // Missing or deleted: the apply rules answer `not_found` or a conflict with the
            // tombstone, which carries no fields.
            None => {}
        }
        if let (Some(field), true) = (&self.owner_field, action != Action::Delete) {
            if let Some(value) = m.patch.get(field) {
                let unchanged = match live {
                    Some(record) if action == Action::Update => record.fields.get(field),
                    _ => None,
                };
                let own_name = action == Action::Create && value.as_str() == Some(&who.user);
                if unchanged != Some(value) && !own_name {
                    return Some(format!(
                        "`{field}` is set by the server on create and cannot change"
                    ));
                }
            }
        }
        None
    }
}

/// The user names a field's value holds: the name itself, or the names in a list (other
/// values name nobody).
pub fn users_named(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a field's value names `user`.
fn lists_user(value: Option<&Value>, user: &str) -> bool {
    users_named(value).contains(&user)
}

/// Who a read grant admits for a record holding `fields`: the subjects partial sync keeps
/// per record (`permissions_filter`): `tenant`, `role:<name>` or `user:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reader<'a> {
    Tenant,
    Role(&'a str),
    User(&'a str),
}

impl CollectionAccess {
    /// Everyone the `read` grants admit for a record holding `fields` — the same grants
    /// [`CollectionAccess::allows`] judges a single user by.
    pub fn readers<'a>(&'a self, fields: &'a Fields) -> Vec<Reader<'a>> {
        let mut out = Vec::new();
        for grant in &self.read {
            match grant {
                Grant::Tenant => out.push(Reader::Tenant),
                Grant::Role(role) => out.push(Reader::Role(role)),
                Grant::Owner => out.extend(
                    users_named(self.owner_field.as_ref().and_then(|f| fields.get(f)))
                        .into_iter()
                        .map(Reader::User),
                ),
                Grant::UsersIn(field) => {
                    out.extend(users_named(fields.get(field)).into_iter().map(Reader::User))
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn who(user: &str, roles: &[&str]) -> Identity {
        Identity {
            tenant: "t".into(),
            user: user.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn fields(v: Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    fn access(read: &[&str]) -> CollectionAccess {
        CollectionAccess::from_section(&CollectionSection {
            read: Some(read.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn grants_parse_and_unknown_ones_are_refused() {
        assert_eq!("owner".parse(), Ok(Grant::Owner));
        assert_eq!(
            "users_in:shared_with".parse(),
            Ok(Grant::UsersIn("shared_with".into()))
        );
        assert_eq!("role:manager".parse(), Ok(Grant::Role("manager".into())));
        assert!("everyone".parse::<Grant>().is_err());
        assert!("role:".parse::<Grant>().is_err());
    }

    #[test]
    fn each_grant_admits_whom_it_names() {
        let notes = access(&["owner", "users_in:shared_with", "role:manager"]);
        let note = fields(json!({"owner": "alice", "shared_with": ["bob"]}));
        assert!(notes.allows(&who("alice", &[]), Action::Read, &note));
        assert!(notes.allows(&who("bob", &[]), Action::Read, &note));
        assert!(notes.allows(&who("carol", &["manager"]), Action::Read, &note));
        assert!(!notes.allows(&who("carol", &["clerk"]), Action::Read, &note));
        assert!(!notes.allows(&who("carol", &[]), Action::Read, &fields(json!({}))));
        // Omitted update and delete follow read; create stays open to the tenant.
        assert_eq!(notes.update, notes.read);
        assert_eq!(notes.delete, notes.read);
        assert_eq!(notes.create, vec![Grant::Tenant]);
        assert_eq!(notes.owner_field.as_deref(), Some("owner"));
        assert_eq!(access(&["tenant"]).owner_field, None);
    }
}
