//! Unit tests of the statement builder.

use super::statements::{by_key, select_in};
use sqlx::{Arguments as _, Database, Encode, Postgres, QueryBuilder, Sqlite, Type};

/// The prefetch statement as `QueryBuilder` wrote it before the SQL became generic.
/// (`keys` already padded to the length `select_in` pads to.)
fn built<B: Database>(also: Option<(&str, &str)>, keys: &[&str]) -> String
where
    for<'a> String: Encode<'a, B> + Type<B>,
{
    let mut q = QueryBuilder::<B>::new("SELECT x FROM t");
    q.push(" WHERE tenant = ").push_bind("t1".to_owned());
    if let Some((column, value)) = also {
        q.push(format!(" AND {column} = "))
            .push_bind(value.to_owned());
    }
    q.push(" AND id IN (");
    let mut list = q.separated(", ");
    for k in keys {
        list.push_bind(k.to_string());
    }
    q.push(")");
    q.sql().to_owned()
}

/// An optional `(column, value)` filter, the keys of the `IN` list, and the keys as the
/// statement lists them (padded to a power of two).
type Case<'a> = (Option<(&'a str, &'a str)>, &'a [&'a str], &'a [&'a str]);

#[test]
fn select_in_writes_the_statements_query_builder_wrote() {
    let cases: [Case; 4] = [
        (None, &["a"], &["a"]),
        (None, &["a", "b", "c"], &["a", "b", "c", "c"]),
        (Some(("collection", "todos")), &["a", "b"], &["a", "b"]),
        (
            None,
            &["a", "b", "c", "d", "e"],
            &["a", "b", "c", "d", "e", "e", "e", "e"],
        ),
    ];
    for (also, keys, listed) in cases {
        let (sql, args) = select_in::<Sqlite>("SELECT x FROM t", "t1", also, "id", keys)
            .expect("sqlite statement");
        assert_eq!(sql, built::<Sqlite>(also, listed));
        assert_eq!(args.len(), 1 + usize::from(also.is_some()) + listed.len());
        let (sql, args) = select_in::<Postgres>("SELECT x FROM t", "t1", also, "id", keys)
            .expect("postgres statement");
        assert_eq!(sql, built::<Postgres>(also, listed));
        assert_eq!(args.len(), 1 + usize::from(also.is_some()) + listed.len());
    }
    let (sql, _) = select_in::<Postgres>(
        "SELECT x FROM t",
        "t1",
        Some(("collection", "todos")),
        "id",
        &["a", "b"],
    )
    .expect("postgres statement");
    assert_eq!(
        sql,
        "SELECT x FROM t WHERE tenant = $1 AND collection = $2 AND id IN ($3, $4)"
    );
    let (sql, _) = select_in::<Sqlite>("SELECT x FROM t", "t1", None, "id", &["a", "b"])
        .expect("sqlite statement");
    assert_eq!(sql, "SELECT x FROM t WHERE tenant = ? AND id IN (?, ?)");
}

/// Every batch size maps to one of a few statement texts (what lets the statement cache keep
/// them prepared): 1 to 512 keys give the ten lengths 1, 2, 4, …, 512.
#[test]
fn select_in_lists_take_ten_lengths() {
    let keys: Vec<String> = (0..512).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let texts: std::collections::BTreeSet<String> = (1..=keys.len())
        .map(|n| {
            select_in::<Sqlite>("SELECT x FROM t", "t1", None, "id", &keys[..n])
                .expect("sqlite statement")
                .0
        })
        .collect();
    assert_eq!(texts.len(), 10);
}

/// PostgreSQL's prefetch: one whole-key lookup per key, the list padded like `IN` lists.
#[test]
fn by_key_looks_up_each_key_on_the_whole_key() {
    let (sql, args) = by_key::<Postgres>(
        "id, version",
        "records",
        "t1",
        Some(("collection", "notes")),
        "id",
        &["a", "b", "c"],
    )
    .expect("postgres statement");
    assert_eq!(
        sql,
        "SELECT id, version FROM unnest(ARRAY[$1, $2, $3, $4]::text[]) AS k(wanted) \
         CROSS JOIN LATERAL (SELECT id, version FROM records WHERE tenant = $5 \
         AND collection = $6 AND id = k.wanted OFFSET 0) r"
    );
    assert_eq!(args.len(), 6);
    let (sql, args) = by_key::<Postgres>("op_id", "ops", "t1", None, "op_id", &["a"])
        .expect("postgres statement");
    assert_eq!(
        sql,
        "SELECT op_id FROM unnest(ARRAY[$1]::text[]) AS k(wanted) CROSS JOIN LATERAL \
         (SELECT op_id FROM ops WHERE tenant = $2 AND op_id = k.wanted OFFSET 0) r"
    );
    assert_eq!(args.len(), 2);
}
