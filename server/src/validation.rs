//! Per-collection validation: a registry of rules implementing ferry-core's [`Validator`].
//!
//! The apply rules call it on the record a create or update would produce; a refusal is
//! final (the client dead-letters the op). The binary registers the demo rule for
//! `expenses` ([`Rules::with_demo_rules`]).

use ferry_core::apply::{Refusal, Validator};
use ferry_core::protocol::Fields;
use std::collections::HashMap;
use std::sync::Arc;

/// One collection's rule: `Ok` or a refusal.
pub type Rule = Arc<dyn Fn(&Fields) -> Result<(), Refusal> + Send + Sync>;

/// The rules of every collection; collections without a rule accept everything.
#[derive(Clone, Default)]
pub struct Rules {
    rules: HashMap<String, Vec<Rule>>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("collections", &self.rules.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Rules {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule for `collection`; all rules of a collection must pass.
    pub fn register(
        mut self,
        collection: &str,
        rule: impl Fn(&Fields) -> Result<(), Refusal> + Send + Sync + 'static,
    ) -> Self {
        self.rules
            .entry(collection.to_owned())
            .or_default()
            .push(Arc::new(rule));
        self
    }

    /// The sample app's rules: an expense's `amount`, when present, must be a number that is not negative.
    pub fn with_demo_rules(self) -> Self {
        self.register("expenses", expense_amount)
    }
}

/// `expenses.amount`: when present, a number that is not negative.
pub fn expense_amount(fields: &Fields) -> Result<(), Refusal> {
    let refuse = |message: &str| {
        Err(Refusal {
            code: "validation_failed".into(),
            message: message.into(),
        })
    };
    match fields.get("amount") {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            None => refuse("`amount` must be a number"),
            Some(a) if a < 0.0 => refuse("`amount` must not be negative"),
            Some(_) => Ok(()),
        },
    }
}

impl Validator for Rules {
    fn check(&self, collection: &str, fields: &Fields) -> Result<(), Refusal> {
        match self.rules.get(collection) {
            Some(rules) => rules.iter().try_for_each(|rule| rule(fields)),
            None => Ok(()),
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
    fn demo_rule_for_expenses() {
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
        assert!(neg.message.contains("negative"));
        assert!(rules
            .check("expenses", &fields(json!({"amount": "ten"})))
            .is_err());
        assert!(rules
            .check("expenses", &fields(json!({"amount": null})))
            .is_err());
        assert!(rules
            .check("expenses", &fields(json!({"title": "no amount yet"})))
            .is_ok());
        assert!(rules.check("notes", &fields(json!({"amount": -1}))).is_ok());
    }
}
