//! Partial sync on the client: a pulled removal (`revoked`) drops the local copy of a record
//! the user may no longer read, writes nothing to the outbox, and turns pending edits of it
//! into one dead letter that says why.

use ferry_core::hlc::Hlc;
use ferry_core::policy::Policy;
use ferry_core::protocol::{PullResponse, Record, Revoked};
use ferry_core::replica::{Change, Replica, ReplicaConfig, StoredState};
use serde_json::json;

fn replica() -> Replica {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    Replica::open(StoredState::default(), config, || "me".to_owned())
}

fn note(id: &str, version: u64) -> Record {
    Record {
        collection: "notes".into(),
        id: id.into(),
        version,
        fields: json!({"title": "shared"}).as_object().cloned().unwrap(),
        deleted: false,
        hlc: Hlc {
            wall_ms: 1_000,
            counter: 0,
            node: "them".into(),
        },
    }
}

fn page(changes: Vec<Record>, revoked: Vec<Revoked>, cursor: u64) -> PullResponse {
    PullResponse {
        changes,
        revoked,
        cursor,
        head: cursor,
        ..PullResponse::default()
    }
}

fn revoked(id: &str, version: u64) -> Revoked {
    Revoked {
        collection: "notes".into(),
        id: id.into(),
        version,
    }
}

#[test]
fn a_removal_drops_the_copy_and_stores_the_drop_without_an_outbox_entry() {
    let mut r = replica();
    r.on_pull_page(&page(vec![note("n1", 1), note("n2", 2)], vec![], 2), 2_000);
    let _ = r.take_writes();
    r.on_pull_page(&page(vec![], vec![revoked("n1", 5)], 5), 3_000);
    assert!(r.record("notes", "n1").is_none());
    assert!(r.record("notes", "n2").is_some());
    assert_eq!(r.outbox_depth(), 0);
    assert_eq!(r.dead_letters().count(), 0);
    assert_eq!(r.cursor(), 5);
    let writes = r.take_writes();
    // The storage is told to delete the row, not to keep a tombstone with fields.
    assert_eq!(
        writes.records.get(&("notes".to_owned(), "n1".to_owned())),
        Some(&None)
    );
    assert!(writes.outbox.is_empty());
}

#[test]
fn a_removal_of_a_record_never_held_is_a_no_op() {
    let mut r = replica();
    r.on_pull_page(&page(vec![], vec![revoked("n9", 3)], 3), 2_000);
    assert!(r.record("notes", "n9").is_none());
    assert_eq!(r.outbox_depth(), 0);
    assert_eq!(r.dead_letters().count(), 0);
    assert_eq!(r.cursor(), 3);
}

#[test]
fn pending_edits_of_a_removed_record_become_one_dead_letter_saying_why() {
    let mut r = replica();
    r.on_pull_page(&page(vec![note("n1", 1)], vec![], 1), 2_000);
    let edit = |title: &str| Change::Put(json!({"title": title}).as_object().cloned().unwrap());
    r.write("notes", "n1", edit("mine"), 2_500).unwrap();
    r.write("notes", "n1", edit("mine again"), 2_600).unwrap();
    assert!(r.outbox_depth() >= 1);
    r.on_pull_page(&page(vec![], vec![revoked("n1", 4)], 4), 3_000);
    assert!(r.record("notes", "n1").is_none());
    assert_eq!(r.outbox_depth(), 0);
    let letters: Vec<_> = r.dead_letters().collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].code, "forbidden");
    assert!(
        letters[0].message.contains("no longer read"),
        "{}",
        letters[0].message
    );
    // The user's edit is kept in the letter.
    assert_eq!(
        letters[0].desired.fields.get("title"),
        Some(&json!("mine again"))
    );
}

/// Pushes everything queued and acknowledges each op at the next version from `version`.
fn push_and_ack(r: &mut Replica, mut version: u64) {
    while let Some(req) = r.begin_push() {
        let accepted = req
            .mutations
            .iter()
            .map(|m| {
                version += 1;
                ferry_core::protocol::Accepted {
                    op_id: m.op_id.clone(),
                    version,
                }
            })
            .collect();
        let resp = ferry_core::protocol::PushResponse {
            accepted,
            cursor: version,
            ..Default::default()
        };
        r.on_push_response(&resp, 2_500);
    }
}

#[test]
fn the_creator_takes_the_fields_the_server_set_on_create() {
    let mut r = replica();
    let title = Change::Put(json!({"title": "mine"}).as_object().cloned().unwrap());
    r.write("notes", "n1", title, 2_000).unwrap();
    push_and_ack(&mut r, 0);
    // The server stored the note with its owner; the pull brings that same version back.
    let mut stored = note("n1", 1);
    stored.fields = json!({"title": "mine", "owner": "me"})
        .as_object()
        .cloned()
        .unwrap();
    r.on_pull_page(&page(vec![stored.clone()], vec![], 1), 3_000);
    let held = r.record("notes", "n1").expect("held");
    assert_eq!(held.state.fields.get("owner"), Some(&json!("me")));
    assert_eq!(held.base.as_ref(), Some(&stored));
    assert_eq!(r.outbox_depth(), 0);
}

#[test]
fn our_own_write_that_takes_a_record_out_of_our_view_removes_it() {
    let mut r = replica();
    r.on_pull_page(&page(vec![note("n1", 1)], vec![], 1), 2_000);
    // The user unshares the note from themself; the server accepts it at version 2 ...
    let unshare = Change::Patch(json!({"shared_with": []}).as_object().cloned().unwrap());
    r.write("notes", "n1", unshare, 2_100).unwrap();
    push_and_ack(&mut r, 1);
    assert_eq!(r.record("notes", "n1").map(|h| h.version()), Some(2));
    // ... and the next pull removes that very version.
    r.on_pull_page(&page(vec![], vec![revoked("n1", 2)], 2), 3_000);
    assert!(r.record("notes", "n1").is_none());
    assert_eq!(r.dead_letters().count(), 0);
}
