//! The app's data versions: the oldest shape of records the server still accepts writes in.
//!
//! An app that changes its record shapes between releases migrates what devices store
//! (`Ferry.open({ version, migrate })`); every push names the data version its client runs
//! in the `Ferry-Data-Version` header (absent: 0). Once every device is expected to have
//! moved on, the operator raises the minimum — for every tenant, one tenant, or one
//! collection — and a push from an older client is refused with 409 `upgrade_required`
//! before anything of it is applied, so old shapes are never written again. The client
//! keeps its outbox and says `upgrade_required` in its sync state (PROTOCOL.md §3).
//!
//! In the config file:
//!
//! ```toml
//! [data_versions]
//! minimum = 2              # every tenant and collection
//! [data_versions.tenants]
//! acme = 3                 # this tenant
//! [data_versions.collections]
//! notes = 4                # pushes writing this collection
//! ```

use crate::errors::ApiError;
use axum::http::HeaderMap;
use ferry_core::protocol::PushRequest;
use serde::Deserialize;
use std::collections::HashMap;

/// The header a push names its client's data version in.
pub const DATA_VERSION_HEADER: &str = "ferry-data-version";

/// The minimum data versions; the largest that applies to a push wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataVersions {
    /// For every tenant and collection.
    #[serde(default)]
    pub minimum: u32,
    /// Per tenant.
    #[serde(default)]
    pub tenants: HashMap<String, u32>,
    /// Per collection, for pushes that write it.
    #[serde(default)]
    pub collections: HashMap<String, u32>,
}

impl DataVersions {
    /// The oldest data version `tenant` may push `req` from.
    pub fn required(&self, tenant: &str, req: &PushRequest) -> u32 {
        let tenant_min = self.tenants.get(tenant).copied().unwrap_or(0);
        let collection_min = req
            .mutations
            .iter()
            .filter_map(|m| self.collections.get(&m.collection))
            .copied()
            .max()
            .unwrap_or(0);
        self.minimum.max(tenant_min).max(collection_min)
    }

    /// Refuses a push whose client runs an older data version than `tenant` accepts.
    pub fn check(
        &self,
        headers: &HeaderMap,
        tenant: &str,
        req: &PushRequest,
    ) -> Result<(), ApiError> {
        let sent = client_version(headers)?;
        let required = self.required(tenant, req);
        match sent >= required {
            true => Ok(()),
            false => Err(ApiError::UpgradeRequired { sent, required }),
        }
    }
}

/// The client's data version from its header (absent: 0, a client that never migrated).
pub fn client_version(headers: &HeaderMap) -> Result<u32, ApiError> {
    match headers.get(DATA_VERSION_HEADER) {
        None => Ok(0),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| ApiError::BadRequest {
                code: "invalid_request",
                message:
                    "the Ferry-Data-Version header must be a whole number from 0 to 4294967295"
                        .into(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::protocol::{Mutation, OpKind};

    fn push_to(collections: &[&str]) -> PushRequest {
        PushRequest {
            client_id: "c".into(),
            mutations: collections
                .iter()
                .enumerate()
                .map(|(i, c)| Mutation {
                    op_id: format!("op{i}"),
                    client_id: "c".into(),
                    seq: i as u64 + 1,
                    collection: (*c).into(),
                    record_id: "r".into(),
                    op: OpKind::Create,
                    base_version: 0,
                    patch: Default::default(),
                    hlc: Default::default(),
                })
                .collect(),
        }
    }

    fn headers(version: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = version {
            h.insert(DATA_VERSION_HEADER, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_largest_applicable_minimum_wins() {
        let versions = DataVersions {
            minimum: 1,
            tenants: HashMap::from([("acme".into(), 3)]),
            collections: HashMap::from([("notes".into(), 5)]),
        };
        assert_eq!(versions.required("other", &push_to(&["tasks"])), 1);
        assert_eq!(versions.required("acme", &push_to(&["tasks"])), 3);
        assert_eq!(versions.required("other", &push_to(&["tasks", "notes"])), 5);
    }

    #[test]
    fn an_older_client_is_refused_and_a_current_one_passes() {
        let versions = DataVersions {
            minimum: 2,
            ..Default::default()
        };
        let req = push_to(&["notes"]);
        let refused = versions.check(&headers(Some("1")), "t", &req).unwrap_err();
        assert_eq!(refused.code(), "upgrade_required");
        assert_eq!(refused.status(), axum::http::StatusCode::CONFLICT);
        // No header: a client that never migrated (version 0).
        assert!(versions.check(&headers(None), "t", &req).is_err());
        assert!(versions.check(&headers(Some("2")), "t", &req).is_ok());
        assert!(versions.check(&headers(Some("7")), "t", &req).is_ok());
        let bad = versions
            .check(&headers(Some("two")), "t", &req)
            .unwrap_err();
        assert_eq!(bad.code(), "invalid_request");
    }
}
