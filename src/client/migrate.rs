//! `Ferry.open({ version, migrate })`: the app's data migration, run at open by the tab that
//! holds the leader lock, over the replica the engine just loaded.
//!
//! The rewriting itself is the core's (`Replica::migrate`: two phases, nothing changed on
//! error); this file calls the app's function record by record and commits the result as one
//! batch — one IndexedDB transaction carrying the migrated rows and the new data version —
//! so a tab closed midway has stored nothing and the next open migrates again from the
//! untouched data. Only the leader migrates: a tab that opens while another tab leads waits
//! (up to the store's blocked timeout) for the lock, reloads what the leader stored, and
//! migrates only if the data is still older.

use super::BrowserEngine;
use crate::interop::{fields_from_js, row_value, to_js};
use crate::platform::js_message;
use crate::store::schema::DEFAULT_BLOCKED_TIMEOUT_MS;
use crate::tabs::Leadership;
use ferry_core::engine::Role;
use ferry_core::protocol::Fields;
use ferry_core::replica::data_too_new;
use ferry_core::{CoreError, ErrorCode};
use futures::future::{select, Either};
use js_sys::{Function, Object, Promise, Reflect};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// The app's data version and its migration function, as `Ferry.open` was given them.
#[derive(Clone)]
pub struct Migration {
    pub version: u32,
    /// `None`: the shapes did not change; only the version is recorded.
    pub migrate: Option<Function>,
}

/// Brings the stored data to `migration.version` if it is older. `lock` is the leader lock
/// when this tab holds it; a tab without it waits for it here (and keeps it, to lead). On
/// error the caller releases whatever `lock` holds.
pub async fn run(
    engine: &BrowserEngine,
    migration: &Migration,
    lock: &mut Option<Leadership>,
    lock_name: &str,
) -> Result<(), CoreError> {
    let wait_ms = DEFAULT_BLOCKED_TIMEOUT_MS;
    let stored = engine.replica().data_version();
    if stored == migration.version {
        return Ok(());
    }
    if stored > migration.version {
        return Err(data_too_new(stored, migration.version));
    }
    if lock.is_none() {
        let granted = wait_for_lock(lock_name, wait_ms).await.ok_or_else(|| {
                CoreError::new(
                    ErrorCode::MigrationFailed,
                    format!(
                        "the stored data is at version {stored} and needs migrating to {}, but another tab of this app \
                         kept the database for {wait_ms} ms; close the app's other tabs (an older release may still run there) \
                         and open again",
                        migration.version
                    ),
                )
        })?;
        *lock = Some(granted);
        // Hold what the last leader stored (it may have migrated already).
        engine.reload(Role::Leader).await?;
        let now_stored = engine.replica().data_version();
        if now_stored > migration.version {
            return Err(data_too_new(now_stored, migration.version));
        }
        if now_stored == migration.version {
            return Ok(());
        }
    }
    let stored = engine.replica().data_version();
    let to = migration.version;
    let migrate = migration.migrate.clone();
    let ((), ticket) = engine.act(|replica, now| {
        replica
            .migrate(to, now, |collection, id, fields| {
                call(migrate.as_ref(), collection, id, fields, stored, to)
            })
            .map(|_| ())
    })?;
    engine.flush(ticket).await
}

/// Runs the app's function on one record (`{id, ...fields}`, `{collection, from, to}`).
fn call(
    migrate: Option<&Function>,
    collection: &str,
    id: &str,
    fields: Fields,
    from: u32,
    to: u32,
) -> Result<Fields, String> {
    let Some(migrate) = migrate else {
        return Ok(fields);
    };
    let record = to_js(&row_value(id, &fields));
    let context = Object::new();
    let _ = Reflect::set(&context, &"collection".into(), &collection.into());
    let _ = Reflect::set(&context, &"from".into(), &JsValue::from(from));
    let _ = Reflect::set(&context, &"to".into(), &JsValue::from(to));
    let out = migrate
        .call2(&JsValue::UNDEFINED, &record, &context)
        .map_err(|e| js_message(&e))?;
    if out.is_instance_of::<Promise>() {
        return Err("migrate returned a Promise; it must return the migrated record itself (migrations run \
                    synchronously, so every record moves in one transaction)"
            .into());
    }
    let mut fields = fields_from_js(&out, "the migrated record").map_err(|e| e.message)?;
    match fields.remove("id") {
        None => Ok(fields),
        Some(Value::String(same)) if same == id => Ok(fields),
        Some(other) => Err(format!(
            "migrate changed the record's id to {other}; a migration rewrites fields, not ids"
        )),
    }
}

/// Waits up to `wait_ms` for the leader lock.
async fn wait_for_lock(name: &str, wait_ms: u32) -> Option<Leadership> {
    let (granted, on_grant) = futures::channel::oneshot::channel::<()>();
    let lock = Leadership::request(name, move || {
        let _ = granted.send(());
    });
    let timeout = gloo_timers::future::TimeoutFuture::new(wait_ms);
    match select(on_grant, timeout).await {
        Either::Left((Ok(()), _)) => Some(lock),
        _ => {
            lock.release();
            None
        }
    }
}
