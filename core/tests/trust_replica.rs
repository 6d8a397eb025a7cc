//! The replica's side of the trust faults, driven directly against the in-memory server: a
//! server restored from an older backup (the clients restore the truth), pushes bounded by
//! bytes, the bounded clock.

use ferry_core::policy::Policy;
use ferry_core::protocol::{Fields, PushResponse, Rejected, ServerLimits};
use ferry_core::replica::{Change, Replica, ReplicaConfig, StoredState, TooLarge};
use ferry_core::server::MemoryServer;
use ferry_core::sim::SimRules;
use serde_json::json;

const NOW: u64 = 1_700_000_000_000;

fn replica(name: &str) -> Replica {
    let config = ReplicaConfig::new([
        ("notes".to_string(), Policy::MergeFields),
        ("tasks".to_string(), Policy::LastWriterWins),
    ]);
    Replica::open(StoredState::default(), config, || name.to_owned())
}

fn fields(v: serde_json::Value) -> Fields {
    v.as_object().cloned().unwrap()
}

/// One sync cycle as the engine runs it: push every batch, then pull every page (checking
/// the history identity of each answer first), again while pulls left something to push.
fn sync(r: &mut Replica, server: &mut MemoryServer, now: u64) -> Vec<String> {
    let mut rollbacks = Vec::new();
    for _ in 0..3 {
        while let Some(req) = r.begin_push() {
            let resp = server.push("t", &req, &SimRules).expect("valid push");
            if let Some(rb) = r.check_history(&resp.epoch, resp.cursor) {
                rollbacks.push(rb.epoch);
            }
            r.on_push_response(&resp, now);
        }
        loop {
            let page = server.pull("t", r.cursor(), 3).expect("pull");
            if let Some(rb) = r.check_history(&page.epoch, page.head) {
                rollbacks.push(rb.epoch);
                continue;
            }
            r.on_pull_page(&page, now);
            if !page.has_more {
                break;
            }
        }
        if !r.has_pending_push() {
            break;
        }
    }
    rollbacks
}

fn view(r: &Replica, collection: &str, id: &str) -> Option<serde_json::Value> {
    r.record(collection, id)
        .filter(|rec| !rec.state.deleted)
        .map(|rec| serde_json::Value::Object(rec.state.fields.clone()))
}

#[test]
fn a_server_restored_from_an_older_backup_gets_back_what_the_devices_hold() {
    let mut server = MemoryServer::default();
    server.tenant_mut("t").set_epoch("history-1");
    let (mut a, mut b) = (replica("a"), replica("b"));
    for i in 0..4 {
        a.write(
            "notes",
            &format!("n{i}"),
            Change::Put(fields(json!({"v": i}))),
            NOW,
        )
        .unwrap();
    }
    sync(&mut a, &mut server, NOW);
    sync(&mut b, &mut server, NOW);
    let backup = server.tenant("t").unwrap().clone();
    // After the backup: a new record and an edit, acknowledged and seen by both devices.
    a.write(
        "notes",
        "n9",
        Change::Put(fields(json!({"v": 9}))),
        NOW + 10,
    )
    .unwrap();
    a.write(
        "notes",
        "n1",
        Change::Patch(fields(json!({"v": 11}))),
        NOW + 10,
    )
    .unwrap();
    sync(&mut a, &mut server, NOW + 10);
    sync(&mut b, &mut server, NOW + 10);
    assert_eq!(a.outbox_depth(), 0);

    server.restore("t", backup, "history-2");
    // Another device's new write after the restore gets a version below a's cursor.
    b.write(
        "tasks",
        "t1",
        Change::Put(fields(json!({"done": false}))),
        NOW + 20,
    )
    .unwrap();
    let seen = sync(&mut b, &mut server, NOW + 20);
    assert_eq!(seen, ["history-2"], "b detects the rollback");
    let seen = sync(&mut a, &mut server, NOW + 30);
    assert_eq!(seen, ["history-2"], "a detects the rollback");
    sync(&mut b, &mut server, NOW + 40);

    let tenant = server.tenant("t").unwrap();
    let on_server = |c: &str, id: &str| {
        tenant
            .record(c, id)
            .filter(|r| !r.deleted)
            .map(|r| serde_json::Value::Object(r.fields.clone()))
    };
    assert_eq!(
        on_server("notes", "n9"),
        Some(json!({"v": 9})),
        "a lost record came back"
    );
    assert_eq!(
        on_server("notes", "n1"),
        Some(json!({"v": 11})),
        "a lost edit came back"
    );
    for r in [&a, &b] {
        assert_eq!(view(r, "tasks", "t1"), Some(json!({"done": false})));
        assert_eq!(view(r, "notes", "n9"), Some(json!({"v": 9})));
        assert_eq!(view(r, "notes", "n1"), Some(json!({"v": 11})));
        assert_eq!(r.outbox_depth(), 0);
        assert!(!r.is_restoring());
        assert_eq!(
            r.cursor(),
            tenant.cursor(),
            "caught up with the new history"
        );
    }
}

#[test]
fn a_head_behind_the_cursor_is_a_rollback_even_under_the_same_epoch() {
    let mut server = MemoryServer::default();
    server.tenant_mut("t").set_epoch("same");
    let mut a = replica("a");
    a.write("notes", "n", Change::Put(fields(json!({"v": 1}))), NOW)
        .unwrap();
    sync(&mut a, &mut server, NOW);
    let backup = server.tenant("t").unwrap().clone();
    a.write("notes", "m", Change::Put(fields(json!({"v": 2}))), NOW + 1)
        .unwrap();
    sync(&mut a, &mut server, NOW + 1);
    server.restore("t", backup, "same");
    assert_eq!(sync(&mut a, &mut server, NOW + 2), ["same"]);
    sync(&mut a, &mut server, NOW + 3);
    assert!(server.tenant("t").unwrap().record("notes", "m").is_some());
}

#[test]
fn a_server_without_epochs_is_never_taken_for_a_rolled_back_one() {
    let mut server = MemoryServer::default();
    let mut a = replica("a");
    a.write("notes", "n", Change::Put(fields(json!({"v": 1}))), NOW)
        .unwrap();
    assert!(sync(&mut a, &mut server, NOW).is_empty());
    assert!(a.check_history("", 0).is_none());
    assert!(!a.is_restoring());
}

#[test]
fn big_records_go_out_in_batches_bounded_by_bytes() {
    let mut a = replica("a");
    let big = "x".repeat(230 * 1024);
    for i in 0..20 {
        a.write(
            "notes",
            &format!("big{i}"),
            Change::Put(fields(json!({"body": big}))),
            NOW,
        )
        .unwrap();
    }
    let limits = a.batch_limits();
    let mut server = MemoryServer::default();
    let mut pushes = 0;
    while let Some(req) = a.begin_push() {
        let size = serde_json::to_vec(&req).unwrap().len();
        assert!(size <= limits.max_bytes, "a push of {size} bytes");
        let resp = server.push("t", &req, &SimRules).unwrap();
        a.on_push_response(&resp, NOW);
        pushes += 1;
    }
    assert!(pushes >= 2, "20 x 230 KiB cannot go in one push");
    assert_eq!(a.outbox_depth(), 0);
}

#[test]
fn a_413_splits_the_batch_and_a_lone_refused_change_becomes_a_dead_letter() {
    let mut a = replica("a");
    for i in 0..4 {
        a.write(
            "notes",
            &format!("n{i}"),
            Change::Put(fields(json!({"body": "y".repeat(2_000)}))),
            NOW,
        )
        .unwrap();
    }
    let req = a.begin_push().unwrap();
    assert_eq!(req.mutations.len(), 4);
    assert!(matches!(
        a.on_push_too_large(&req, NOW),
        TooLarge::Split { .. }
    ));
    let req = a.begin_push().unwrap();
    assert!(req.mutations.len() < 4, "the retry is smaller");
    // Keep refusing: the batch shrinks to one mutation, which becomes a dead letter.
    let mut req = req;
    loop {
        match a.on_push_too_large(&req, NOW) {
            TooLarge::DeadLettered { .. } => break,
            TooLarge::Split { .. } => req = a.begin_push().unwrap(),
        }
    }
    let letter = a.dead_letters().next().expect("a dead letter");
    assert_eq!(letter.code, "too_large");
    // The writes behind it still go out.
    let mut server = MemoryServer::default();
    let req = a.begin_push().expect("later writes are not blocked");
    let resp = server.push("t", &req, &SimRules).unwrap();
    a.on_push_response(&resp, NOW);
}

#[test]
fn a_change_larger_than_the_advertised_push_limit_is_dead_lettered_before_sending() {
    let mut a = replica("a");
    a.set_server_limits(Some(&ServerLimits {
        max_push_bytes: 16 * 1024,
        ..ServerLimits::default()
    }));
    a.write(
        "notes",
        "big",
        Change::Put(fields(json!({"body": "z".repeat(20_000)}))),
        NOW,
    )
    .unwrap();
    a.write("notes", "small", Change::Put(fields(json!({"v": 1}))), NOW)
        .unwrap();
    let req = a.begin_push().expect("the small one goes");
    assert_eq!(req.mutations.len(), 1);
    assert_eq!(req.mutations[0].record_id, "small");
    let letter = a
        .dead_letters()
        .next()
        .expect("the big one is a dead letter");
    assert_eq!(letter.code, "too_large");
    assert!(letter.message.contains("16384"), "{}", letter.message);
}

#[test]
fn a_device_whose_clock_is_a_day_ahead_stamps_with_server_time_once_it_has_synced() {
    let day = 24 * 3_600_000;
    let mut ahead = replica("ahead");
    // The server's clock says NOW; this device's says NOW + a day.
    ahead.calibrate(NOW, NOW + day - 40, NOW + day + 40);
    ahead
        .write(
            "tasks",
            "t",
            Change::Put(fields(json!({"done": true}))),
            NOW + day,
        )
        .unwrap();
    let stamp = ahead.record("tasks", "t").unwrap().hlc.wall_ms;
    assert!(
        stamp.abs_diff(NOW) < 1_000,
        "stamped {stamp}, server time {NOW}"
    );
    // A device that is right and edits later wins last-writer-wins.
    let mut right = replica("right");
    right
        .write(
            "tasks",
            "t",
            Change::Put(fields(json!({"done": false}))),
            NOW + 5_000,
        )
        .unwrap();
    assert!(right.record("tasks", "t").unwrap().hlc > ahead.record("tasks", "t").unwrap().hlc);
}

#[test]
fn a_clock_that_ran_ahead_before_the_first_sync_is_pulled_back_to_the_bound() {
    let day = 24 * 3_600_000;
    let mut ahead = replica("ahead");
    ahead
        .write(
            "tasks",
            "t",
            Change::Put(fields(json!({"done": true}))),
            NOW + day,
        )
        .unwrap();
    ahead.calibrate(NOW, NOW + day, NOW + day);
    ahead
        .write(
            "tasks",
            "u",
            Change::Put(fields(json!({"done": true}))),
            NOW + day,
        )
        .unwrap();
    let stamp = ahead.record("tasks", "u").unwrap().hlc.wall_ms;
    assert!(
        stamp <= NOW + ferry_core::protocol::limits::MAX_CLOCK_DRIFT_MS,
        "stamped {stamp}"
    );
}

#[test]
fn pushes_answered_by_a_rolled_back_server_are_still_folded_in() {
    // The acks of a push answered from the new history are real: they are kept.
    let mut a = replica("a");
    a.write("notes", "n", Change::Put(fields(json!({"v": 1}))), NOW)
        .unwrap();
    let req = a.begin_push().unwrap();
    let mut server = MemoryServer::default();
    server.tenant_mut("t").set_epoch("e2");
    let resp: PushResponse = server.push("t", &req, &SimRules).unwrap();
    a.check_history("e1", 0);
    assert!(a.check_history(&resp.epoch, resp.cursor).is_some());
    a.on_push_response(&resp, NOW);
    assert_eq!(a.outbox_depth(), 0);
}

#[test]
fn a_write_refused_as_clock_ahead_goes_out_again_with_the_calibrated_stamp() {
    // A device ten minutes ahead writes before it ever heard the server's time.
    let ahead = 10 * 60_000;
    let mut a = replica("a");
    a.write(
        "tasks",
        "t",
        Change::Put(fields(json!({"done": true}))),
        NOW + ahead,
    )
    .unwrap();
    let req = a.begin_push().unwrap();
    a.calibrate(NOW, NOW + ahead, NOW + ahead);
    let refused = PushResponse {
        rejected: vec![Rejected {
            op_id: req.mutations[0].op_id.clone(),
            code: "clock_ahead".into(),
            message: "stamp ahead of the server clock".into(),
            retryable: false,
        }],
        cursor: 1,
        server_time: NOW,
        ..PushResponse::default()
    };
    let summary = a.on_push_response(&refused, NOW + ahead);
    assert_eq!(summary.restamped, 1);
    assert_eq!(a.dead_letters().count(), 0, "not a dead letter");
    let again = a.begin_push().expect("the write goes out again");
    let stamp = again.mutations[0].hlc.wall_ms;
    assert!(
        stamp.abs_diff(NOW) < 1_000,
        "re-stamped at {stamp}, server time {NOW}"
    );
    assert_eq!(again.mutations[0].patch.get("done"), Some(&json!(true)));
    let mut server = MemoryServer::default();
    let resp = server.push("t", &again, &SimRules).unwrap();
    a.on_push_response(&resp, NOW + ahead);
    assert_eq!(a.outbox_depth(), 0);
}

#[test]
fn a_conflict_answered_from_a_restored_history_keeps_the_acknowledged_edit() {
    // A push answered by a server restored from an older backup conflicts: the server's state
    // is older than what this device had acknowledged, not a later write to merge with. The
    // device must push what it holds (its acknowledged edit and its new one), not merge the
    // backup's values in as if someone had written them.
    let mut server = MemoryServer::default();
    server.tenant_mut("t").set_epoch("h1");
    let mut a = replica("a");
    a.write(
        "notes",
        "n",
        Change::Put(fields(json!({"v": 1, "w": 1}))),
        NOW,
    )
    .unwrap();
    sync(&mut a, &mut server, NOW);
    let backup = server.tenant("t").unwrap().clone();
    a.write(
        "notes",
        "n",
        Change::Patch(fields(json!({"v": 2}))),
        NOW + 1,
    )
    .unwrap();
    sync(&mut a, &mut server, NOW + 1);
    assert_eq!(a.outbox_depth(), 0, "v = 2 was acknowledged");

    server.restore("t", backup, "h2");
    a.write(
        "notes",
        "n",
        Change::Patch(fields(json!({"w": 3}))),
        NOW + 2,
    )
    .unwrap();
    assert_eq!(sync(&mut a, &mut server, NOW + 2), ["h2"]);
    sync(&mut a, &mut server, NOW + 3);

    let on_server = server.tenant("t").unwrap().record("notes", "n").cloned();
    assert_eq!(
        on_server.map(|r| serde_json::Value::Object(r.fields)),
        Some(json!({"v": 2, "w": 3})),
        "the acknowledged v = 2 came back with the new w = 3"
    );
    assert_eq!(view(&a, "notes", "n"), Some(json!({"v": 2, "w": 3})));
    assert_eq!(a.outbox_depth(), 0);
    assert!(!a.is_restoring());
}
