//! App-level data migrations (`Replica::migrate`, driven like `Ferry.open({ version, migrate })`
//! drives it): every stored shape moves once, the pending changes and the migrated shapes
//! reach the server, a refused record changes nothing, and data a newer release migrated is
//! refused with a typed error.

use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{LoopbackTransport, ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, Store};
use ferry_core::protocol::Fields;
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_core::server::MemoryServer;
use ferry_core::ErrorCode;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

type Dev = Engine<MemoryStore, LoopbackTransport, NoAuth, ManualClock, SeededEntropy>;

fn open(store: &MemoryStore, server: &Rc<RefCell<MemoryServer>>) -> Dev {
    let config = ReplicaConfig::new([
        ("notes".to_string(), Policy::MergeFields),
        ("tasks".to_string(), Policy::LastWriterWins),
    ]);
    block_on(Engine::open(
        store.clone(),
        LoopbackTransport::new(server.clone(), "t"),
        NoAuth,
        ManualClock::new(1_000_000),
        SeededEntropy::new(7),
        config,
    ))
    .unwrap()
}

fn fields(v: Value) -> Fields {
    v.as_object().unwrap().clone()
}

fn write(dev: &Dev, collection: &str, id: &str, v: Value) {
    let (_, ticket) = dev.write(collection, id, Change::Put(fields(v))).unwrap();
    block_on(dev.flush(ticket)).unwrap();
}

/// Version 1 → 2: `title` becomes `name`, and `migrations` counts how often it ran.
fn rename_title(_: &str, _: &str, mut f: Fields) -> Result<Fields, String> {
    if let Some(title) = f.remove("title") {
        f.insert("name".into(), title);
    }
    let n = f.get("migrations").and_then(Value::as_u64).unwrap_or(0);
    f.insert("migrations".into(), json!(n + 1));
    Ok(f)
}

fn migrate(
    dev: &Dev,
    to: u32,
    f: impl FnMut(&str, &str, Fields) -> Result<Fields, String>,
) -> Result<(), ferry_core::CoreError> {
    let (_, ticket) = dev.act(|r, now| r.migrate(to, now, f))?;
    block_on(dev.flush(ticket))
}

fn view(dev: &Dev, collection: &str, id: &str) -> Value {
    Value::Object(
        dev.replica()
            .record(collection, id)
            .unwrap()
            .state
            .fields
            .clone(),
    )
}

/// A device with a synced note `a`, a synced note `c` edited since (pending update), and a
/// note `b` created offline (pending create).
fn device_with_old_shapes() -> (MemoryStore, Rc<RefCell<MemoryServer>>) {
    let store = MemoryStore::new();
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let dev = open(&store, &server);
    write(&dev, "notes", "a", json!({"title": "A"}));
    write(&dev, "notes", "c", json!({"title": "C0", "body": "x"}));
    assert_eq!(block_on(dev.sync()), CycleOutcome::Synced);
    write(&dev, "notes", "c", json!({"title": "C1", "body": "x"}));
    write(&dev, "notes", "b", json!({"title": "B"}));
    (store, server)
}

#[test]
fn a_migration_rewrites_every_view_once_and_the_server_converges_to_the_new_shapes() {
    let (store, server) = device_with_old_shapes();
    let dev = open(&store, &server);
    assert_eq!(dev.replica().data_version(), 0);
    migrate(&dev, 2, rename_title).unwrap();

    for (id, name) in [("a", "A"), ("b", "B"), ("c", "C1")] {
        let v = view(&dev, "notes", id);
        assert_eq!(v["name"], json!(name), "{id}: {v}");
        assert_eq!(v["migrations"], json!(1), "{id}: {v}");
        assert!(v.get("title").is_none(), "{id}: {v}");
    }
    // The version is stored with the rows: a reopen neither migrates again nor sees old shapes.
    let reopened = open(&store, &server);
    assert_eq!(reopened.replica().data_version(), 2);
    let mut calls = 0;
    migrate(&reopened, 2, |_, _, f| {
        calls += 1;
        Ok(f)
    })
    .unwrap();
    assert_eq!(calls, 0, "a migrated store is not migrated again");
    assert_eq!(view(&reopened, "notes", "b")["migrations"], json!(1));

    assert_eq!(block_on(reopened.sync()), CycleOutcome::Synced);
    let srv = server.borrow();
    for (id, name) in [("a", "A"), ("b", "B"), ("c", "C1")] {
        let rec = srv.tenant("t").unwrap().record("notes", id).unwrap();
        assert_eq!(
            Value::Object(rec.fields.clone()),
            match id {
                "c" => json!({"name": name, "body": "x", "migrations": 1}),
                _ => json!({"name": name, "migrations": 1}),
            },
            "{id} on the server has the new shape, without the old field"
        );
    }
    assert_eq!(reopened.replica().outbox_depth(), 0);
}

#[test]
fn a_refused_record_fails_with_a_typed_error_and_changes_nothing() {
    let (store, server) = device_with_old_shapes();
    let before = block_on(store.load()).unwrap();
    let dev = open(&store, &server);
    let err = migrate(&dev, 2, |_, id, f| match id {
        "c" => Err("no shape for c".into()),
        _ => rename_title("notes", id, f),
    })
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::MigrationFailed);
    assert!(err.message.contains("notes/c"), "{}", err.message);
    assert!(err.message.contains("no shape for c"), "{}", err.message);
    // Neither memory nor storage changed: records, outbox, version.
    assert_eq!(dev.replica().data_version(), 0);
    assert_eq!(view(&dev, "notes", "a"), json!({"title": "A"}));
    assert!(!dev.replica().has_unsaved_changes());
    assert_eq!(block_on(store.load()).unwrap(), before);
    // A field Ferry cannot store is refused the same way.
    let long_key = "k".repeat(200);
    let err = migrate(&dev, 2, |_, _, mut f| {
        f.insert(long_key.clone(), json!(1));
        Ok(f)
    })
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::MigrationFailed);
    assert!(err.message.contains("cannot store"), "{}", err.message);
    assert_eq!(block_on(store.load()).unwrap(), before);
    // A working migration afterwards still moves everything once.
    let dev = open(&store, &server);
    migrate(&dev, 2, rename_title).unwrap();
    assert_eq!(view(&dev, "notes", "c")["migrations"], json!(1));
}

#[test]
fn data_a_newer_release_migrated_is_refused_and_left_alone() {
    let (store, server) = device_with_old_shapes();
    let dev = open(&store, &server);
    migrate(&dev, 3, rename_title).unwrap();
    let before = block_on(store.load()).unwrap();
    let old_release = open(&store, &server);
    let err = migrate(&old_release, 2, rename_title).unwrap_err();
    assert_eq!(err.code, ErrorCode::DataTooNew);
    assert_eq!(block_on(store.load()).unwrap(), before);
}

#[test]
fn a_pending_change_keeps_its_stamp_and_a_migrated_synced_record_keeps_the_records() {
    let (store, server) = device_with_old_shapes();
    let dev = open(&store, &server);
    let stamp_of = |dev: &Dev, id: &str| {
        dev.replica()
            .outbox()
            .find(|e| e.record_id == id)
            .map(|e| e.hlc.clone())
    };
    let pending_c = stamp_of(&dev, "c").expect("c has a pending change");
    let record_a = dev.replica().record("notes", "a").unwrap().hlc.clone();
    assert!(stamp_of(&dev, "a").is_none());
    migrate(&dev, 2, rename_title).unwrap();
    // The pending change is still the user's write (last-writer-wins compares this stamp).
    assert_eq!(stamp_of(&dev, "c"), Some(pending_c));
    // The synced record's new shape goes out stamped as old as the content it rewrote, so
    // it never beats a newer edit made on another device.
    assert_eq!(stamp_of(&dev, "a"), Some(record_a));
}
