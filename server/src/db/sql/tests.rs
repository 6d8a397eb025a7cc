//! Unit tests of the statement builder.

use super::push_tx::select_in;
use sqlx::{Arguments as _, Database, Encode, Postgres, QueryBuilder, Sqlite, Type};

/// The prefetch statement as `QueryBuilder` wrote it before the SQL became generic.
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

/// An optional `(column, value)` filter and the keys of the `IN` list.
type Case<'a> = (Option<(&'a str, &'a str)>, &'a [&'a str]);

#[test]
fn select_in_writes_the_statements_query_builder_wrote() {
    let cases: [Case; 3] = [
        (None, &["a"]),
        (None, &["a", "b", "c"]),
        (Some(("collection", "todos")), &["a", "b"]),
    ];
    for (also, keys) in cases {
        let (sql, args) = select_in::<Sqlite>("SELECT x FROM t", "t1", also, "id", keys)
            .expect("sqlite statement");
        assert_eq!(sql, built::<Sqlite>(also, keys));
        assert_eq!(args.len(), 1 + usize::from(also.is_some()) + keys.len());
        let (sql, args) = select_in::<Postgres>("SELECT x FROM t", "t1", also, "id", keys)
            .expect("postgres statement");
        assert_eq!(sql, built::<Postgres>(also, keys));
        assert_eq!(args.len(), 1 + usize::from(also.is_some()) + keys.len());
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
