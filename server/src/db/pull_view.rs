//! The pull path under partial sync: one page of the tenant's log as one user sees it
//! ([`crate::permissions_filter::View`]).
//!
//! Cursors stay positions in the tenant's one log. A page scans rows after the cursor in
//! log order, a window of `limit` rows at a time, at most [`MAX_SCAN_WINDOWS`] windows: a
//! user who may read little of a busy tenant gets an empty page with an advanced cursor
//! rather than an unbounded scan. The page's cursor is the last row *scanned*, so hidden
//! positions are passed, never lost; under a filtering view, when the scan reaches the end
//! of the log the cursor is the head read in the same snapshot (every position up to it was
//! seen). A view that reads everything answers exactly as before partial sync.
//!
//! A pull that names collections (a first sync's critical-first pass) adds
//! `collection IN (…)` to the scan: rows of other collections are passed over like hidden
//! ones, and the page's cursor is a position in the same log, meaningful for that filter.

use super::sql::Backend;
use super::DbError;
use crate::permissions_filter::{Sight, View};
use ferry_core::apply::{PullError, PullPage};
use ferry_core::protocol::{PullResponse, Revoked};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

/// How many windows of `limit` rows one pull scans at most.
pub const MAX_SCAN_WINDOWS: usize = 8;

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `AND collection IN ($first, …)` for a pull that names collections (PROTOCOL.md §4), or
/// nothing. Only placeholders go into the text: the names are bound, never spliced.
fn collection_filter(collections: &[String], first: usize) -> String {
    if collections.is_empty() {
        return String::new();
    }
    let placeholders: Vec<String> = (first..first + collections.len())
        .map(|n| format!("${n}"))
        .collect();
    format!(" AND collection IN ({})", placeholders.join(", "))
}

/// One page of changes after `cursor` as `view`'s user sees it (of `collections` only, when
/// any are named); run it inside one read snapshot.
pub(crate) async fn pull_in<B: Backend>(
    conn: &mut B::Connection,
    tenant: &str,
    cursor: u64,
    limit: u32,
    view: &View,
    collections: &[String],
) -> Result<Result<PullResponse, PullError>, DbError>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> i64: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> bool: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> String: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> Option<String>: Decode<'q, B>,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> Option<i64>: Encode<'q, B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'a> &'a str: ColumnIndex<B::Row>,
    usize: ColumnIndex<B::Row>,
{
    let (head, horizon) = B::head_of(conn, tenant).await?;
    let page = PullPage::new(cursor, limit);
    if let Err(e) = page.check(horizon) {
        return Ok(Err(e));
    }
    let limit = page.limit as usize;
    let mut changes = Vec::new();
    let mut revoked = Vec::new();
    let mut scanned_to = cursor;
    let mut has_more = true;
    // Rows past the page's end that the user would receive (an estimate: only the rest of
    // the last window is looked at, and nothing hidden is ever counted).
    let mut ahead = 0u64;
    let page_sql = format!(
        "SELECT collection, id, version, fields, deleted, hlc, readers FROM records
             WHERE tenant = $1 AND version > $2{} ORDER BY version LIMIT $3",
        collection_filter(collections, 4)
    );
    'scan: for _ in 0..MAX_SCAN_WINDOWS {
        let mut query = sqlx::query(&page_sql)
            .bind(tenant)
            .bind(to_i64(scanned_to))
            .bind(to_i64(limit as u64));
        for name in collections {
            query = query.bind(name.as_str());
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let window_full = rows.len() == limit;
        for row in &rows {
            let record = B::decode_record(row)?;
            let readers: Option<String> = row.try_get("readers")?;
            let sight = view.sight(&record, readers.as_deref());
            if changes.len() + revoked.len() == limit {
                ahead += u64::from(sight != Sight::Hidden);
                continue;
            }
            scanned_to = record.version;
            match sight {
                Sight::Whole => changes.push(record),
                Sight::Removal => revoked.push(Revoked {
                    collection: record.collection,
                    id: record.id,
                    version: record.version,
                }),
                Sight::Hidden => {}
            }
        }
        if changes.len() + revoked.len() == limit {
            // Full: more follows if this window had rows past the page or was itself full.
            has_more = ahead > 0 || window_full;
            break 'scan;
        }
        if !window_full {
            has_more = false;
            break 'scan;
        }
    }
    let remaining = match (has_more, view.sees_everything()) {
        (false, _) => 0,
        // Everything is readable: the exact count reveals nothing.
        (true, true) => {
            let count_sql = format!(
                "SELECT COUNT(*) FROM records WHERE tenant = $1 AND version > $2{}",
                collection_filter(collections, 3)
            );
            let mut query = sqlx::query_scalar(&count_sql)
                .bind(tenant)
                .bind(to_i64(scanned_to));
            for name in collections {
                query = query.bind(name.as_str());
            }
            let n: i64 = query.fetch_one(&mut *conn).await?;
            to_u64(n)
        }
        (true, false) => ahead.max(1),
    };
    let has_more = has_more && remaining > 0;
    let cursor = if has_more || (view.sees_everything() && !changes.is_empty()) {
        scanned_to
    } else if view.sees_everything() {
        // As before partial sync: an empty page keeps the cursor (raised to the horizon).
        cursor.max(horizon)
    } else {
        // The whole log up to the snapshot's head was scanned: a user who may read little
        // does not re-scan the hidden tail on every pull.
        scanned_to.max(head).max(cursor).max(horizon)
    };
    Ok(Ok(PullResponse {
        changes,
        cursor,
        has_more,
        remaining,
        head,
        revoked,
        ..PullResponse::default()
    }))
}
