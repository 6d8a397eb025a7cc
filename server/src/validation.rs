//! What a push may write: each collection's declared permissions ([`crate::permissions`]) and
//! JSON Schema, loaded from the `[collections]` tables of the server config file, as
//! ferry-core's [`Validator`].
//!
//! The apply rules call it for every mutation: [`Validator::authorize`] (a refusal is the
//! final `forbidden`), [`Validator::complete`] (the owner is set on create) and
//! [`Validator::check`] on the record a create or update would produce (a schema failure is
//! the final `validation_failed`). The push route binds the rules to the pushing user with
//! [`Rules::for_user`]; unbound rules check schemas only. The binary's default is the sample
//! app's config ([`DEMO_CONFIG`]): an expense's `amount` may not be negative.

use crate::auth::Identity;
use crate::permissions::{CollectionAccess, CollectionSection};
use ferry_core::apply::{Refusal, Validator};
use ferry_core::protocol::{Fields, Mutation, OpKind, Record};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The binary's default rules, with or without `--demo`: every collection open to the tenant,
/// and the rule that an expense's amount, when present, is a number that is not negative.
pub const DEMO_CONFIG: &str = r#"
[collections.expenses.schema]
type = "object"
properties.amount = { type = "number", minimum = 0 }

[collections.expenses.messages]
"/properties/amount/type" = "`amount` must be a number"
"/properties/amount/minimum" = "`amount` must not be negative"
"#;

/// What `ferry-server --demo` adds for the sample app: partial sync. `private_notes` are read
/// by their owner and the users in `shared_with` and changed by the owner alone; `claims`
/// (expense claims) are read by their author and by role `manager`, changed by the author
/// alone, never negative. The team's notes, tasks and expenses stay open to the tenant: the
/// sample app shows merges and conflicts between two people editing the same record there.
pub const DEMO_PERMISSIONS: &str = r#"
[collections.private_notes]
read = ["owner", "users_in:shared_with"]
update = ["owner"]

[collections.private_notes.schema]
type = "object"
properties.shared_with = { type = "array", items = { type = "string" } }

[collections.private_notes.messages]
"/properties/shared_with/type" = "`shared_with` must be a list of user names"
"/properties/shared_with/items/type" = "`shared_with` must be a list of user names"

[collections.claims]
read = ["owner", "role:manager"]
update = ["owner"]

[collections.claims.schema]
type = "object"
properties.amount = { type = "number", minimum = 0 }

[collections.claims.messages]
"/properties/amount/type" = "`amount` must be a number"
"/properties/amount/minimum" = "`amount` must not be negative"
"#;

/// A collection's schema and the messages of its failures.
struct Schema {
    validator: jsonschema::Validator,
    messages: HashMap<String, String>,
}

/// One declared collection.
struct Collection {
    access: CollectionAccess,
    schema: Option<Schema>,
}

/// The `[collections]` tables of a config file, and what undeclared collections get.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionsConfig {
    #[serde(default)]
    pub collections: HashMap<String, CollectionSection>,
    /// `allow` (the default: tenant-wide, no schema) or `deny` (every write refused).
    #[serde(default)]
    pub undeclared: Undeclared,
}

/// What a collection without a `[collections.<name>]` table gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Undeclared {
    #[default]
    Allow,
    Deny,
}

/// The rules of every collection, optionally bound to the pushing user.
#[derive(Clone, Default)]
pub struct Rules {
    collections: Arc<HashMap<String, Collection>>,
    undeclared: Undeclared,
    who: Option<Arc<Identity>>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("collections", &self.collections.keys().collect::<Vec<_>>())
            .field("undeclared", &self.undeclared)
            .finish()
    }
}

/// A `[collections]` config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("collection `{collection}`: {message}")]
pub struct RulesError {
    pub collection: String,
    pub message: String,
}

impl Rules {
    /// No declared collection: everything open to the tenant, nothing validated.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rules a config declares; schemas are compiled here, so a bad one stops the start.
    pub fn from_config(config: &CollectionsConfig) -> Result<Self, RulesError> {
        let mut collections = HashMap::new();
        for (name, section) in &config.collections {
            let error = |message: String| RulesError {
                collection: name.clone(),
                message,
            };
            let access = CollectionAccess::from_section(section).map_err(error)?;
            let schema = match &section.schema {
                None => None,
                Some(table) => {
                    let value = serde_json::to_value(table).map_err(|e| error(e.to_string()))?;
                    let validator = jsonschema::validator_for(&value)
                        .map_err(|e| error(format!("invalid schema: {e}")))?;
                    Some(Schema {
                        validator,
                        messages: section.messages.clone(),
                    })
                }
            };
            collections.insert(name.clone(), Collection { access, schema });
        }
        Ok(Rules {
            collections: Arc::new(collections),
            undeclared: config.undeclared,
            who: None,
        })
    }

    /// Parses and loads a TOML text holding `[collections]` tables.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let config: CollectionsConfig = toml::from_str(text).map_err(|e| RulesError {
            collection: "*".into(),
            message: e.to_string(),
        })?;
        Self::from_config(&config)
    }

    /// The binary's default rules ([`DEMO_CONFIG`]).
    pub fn with_demo_rules(self) -> Self {
        Self::from_toml(DEMO_CONFIG).expect("the demo config is valid")
    }

    /// The sample app's rules under `--demo`: [`DEMO_CONFIG`] and [`DEMO_PERMISSIONS`].
    pub fn with_demo_permissions(self) -> Self {
        Self::from_toml(&format!("{DEMO_CONFIG}{DEMO_PERMISSIONS}"))
            .expect("the demo permissions are valid")
    }

    /// These rules, judging writes as `who`'s.
    pub fn for_user(&self, who: &Identity) -> Self {
        Rules {
            who: Some(Arc::new(who.clone())),
            ..self.clone()
        }
    }

    /// The permissions of `collection`, or `None` when it is undeclared and refused.
    pub fn access(&self, collection: &str) -> Option<CollectionAccess> {
        match (self.collections.get(collection), self.undeclared) {
            (Some(c), _) => Some(c.access.clone()),
            (None, Undeclared::Allow) => Some(CollectionAccess::tenant_wide()),
            (None, Undeclared::Deny) => None,
        }
    }

    /// A canonical text of everything in these rules that decides who reads what (each
    /// collection's read grants and owner field, and what undeclared collections get): the
    /// config's share of a user's view fingerprint (`permissions_filter::View::fingerprint`).
    pub fn read_policy(&self) -> String {
        let mut names: Vec<&String> = self.collections.keys().collect();
        names.sort();
        let mut text = format!("{:?}", self.undeclared);
        for name in names {
            let access = &self.collections[name].access;
            text.push_str(&format!(
                ";{name}:{:?}:{:?}",
                access.read, access.owner_field
            ));
        }
        text
    }

    /// Whether every user of a tenant may read every record (no read grant narrower than
    /// `tenant`): then a pull may say exactly how many changes remain.
    pub fn reads_open(&self) -> bool {
        self.collections
            .values()
            .all(|c| c.access.read.contains(&crate::permissions::Grant::Tenant))
    }

    /// The roles some read grant names: only these shape a user's view.
    pub fn read_roles(&self) -> std::collections::BTreeSet<String> {
        self.collections
            .values()
            .flat_map(|c| &c.access.read)
            .filter_map(|g| match g {
                crate::permissions::Grant::Role(role) => Some(role.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether `who` may read a stored record (tombstones: never).
    pub fn may_read(&self, who: &Identity, record: &Record) -> bool {
        self.access(&record.collection)
            .is_some_and(|access| access.may_read(who, record))
    }
}

fn forbidden(message: String) -> Refusal {
    Refusal {
        code: "forbidden".into(),
        message,
    }
}

impl Validator for Rules {
    fn check(&self, collection: &str, fields: &Fields) -> Result<(), Refusal> {
        let Some(schema) = self
            .collections
            .get(collection)
            .and_then(|c| c.schema.as_ref())
        else {
            return Ok(());
        };
        let record = serde_json::Value::Object(fields.clone());
        let Err(error) = schema.validator.validate(&record) else {
            return Ok(());
        };
        let schema_path = error.schema_path().as_str().to_owned();
        // The library's own message quotes the value; PROTOCOL.md §7 promises no payload is
        // ever echoed, so the fallback names only where the record fails and which rule.
        let message = schema
            .messages
            .get(&schema_path)
            .cloned()
            .unwrap_or_else(|| {
                let keyword = schema_path.rsplit('/').next().unwrap_or_default();
                format!(
                    "the record does not satisfy the `{collection}` schema: `{}` fails `{keyword}`",
                    match error.instance_path().as_str() {
                        "" => "/",
                        path => path,
                    }
                )
            });
        Err(Refusal {
            code: "validation_failed".into(),
            message,
        })
    }

    fn authorize(&self, m: &Mutation, current: Option<&Record>) -> Result<(), Refusal> {
        let Some(who) = &self.who else {
            return Ok(());
        };
        let Some(access) = self.access(&m.collection) else {
            return Err(forbidden(format!(
                "collection `{}` is not declared on this server",
                m.collection
            )));
        };
        match access.refusal(who, m, current) {
            None => Ok(()),
            Some(message) => Err(forbidden(message)),
        }
    }

    fn hides(&self, record: &Record) -> Option<Refusal> {
        let who = self.who.as_ref()?;
        // A tombstone carries no fields: a conflict with it shows nothing.
        if record.deleted || self.may_read(who, record) {
            return None;
        }
        Some(forbidden(format!(
            "you may not read `{}` record `{}`",
            record.collection, record.id
        )))
    }

    fn complete(&self, m: &Mutation, fields: &mut Fields) {
        let (Some(who), OpKind::Create) = (&self.who, m.op) else {
            return;
        };
        if let Some(field) = self
            .collections
            .get(&m.collection)
            .and_then(|c| c.access.owner_field.as_ref())
        {
            fields.insert(field.clone(), who.user.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn demo_schema_for_expenses() {
        let rules = Rules::new().with_demo_rules();
        assert!(rules
            .check("expenses", &fields(json!({"amount": 12.5})))
            .is_ok());
        assert!(rules
            .check("expenses", &fields(json!({"amount": 0})))
            .is_ok());
        let neg = rules
            .check("expenses", &fields(json!({"amount": -1})))
            .unwrap_err();
        assert_eq!(neg.code, "validation_failed");
        assert_eq!(neg.message, "`amount` must not be negative");
        let text = rules
            .check("expenses", &fields(json!({"amount": "ten"})))
            .unwrap_err();
        assert_eq!(text.message, "`amount` must be a number");
        assert!(rules
            .check("expenses", &fields(json!({"title": "no amount yet"})))
            .is_ok());
        assert!(rules.check("notes", &fields(json!({"amount": -1}))).is_ok());
    }

    #[test]
    fn a_failure_without_a_message_names_the_rule_not_the_value() {
        let rules = Rules::from_toml(
            r#"
            [collections.notes.schema]
            type = "object"
            required = ["title"]
            properties.title = { type = "string", maxLength = 5 }
            "#,
        )
        .unwrap();
        let long = rules
            .check("notes", &fields(json!({"title": "secret-payload"})))
            .unwrap_err();
        assert_eq!(long.code, "validation_failed");
        assert!(long.message.contains("/title"), "{}", long.message);
        assert!(long.message.contains("maxLength"), "{}", long.message);
        assert!(!long.message.contains("secret-payload"), "{}", long.message);
        let missing = rules.check("notes", &fields(json!({}))).unwrap_err();
        assert!(missing.message.contains("required"), "{}", missing.message);
    }

    #[test]
    fn bad_configs_are_refused_at_load() {
        let unknown = Rules::from_toml("[collections.notes]\nread = [\"everyone\"]\n");
        assert!(unknown.unwrap_err().to_string().contains("everyone"));
        let typo = Rules::from_toml("[collections.notes]\nreed = [\"owner\"]\n");
        assert!(typo.is_err());
        let schema = Rules::from_toml("[collections.notes.schema]\ntype = 5\n");
        assert!(schema.unwrap_err().to_string().contains("invalid schema"));
    }
}
