//! The statement texts the push transaction runs, built with their arguments: multi-row
//! `INSERT`s, and the prefetch lookups (`IN (…)` lists on SQLite, one whole-key lookup per
//! key on PostgreSQL), each list padded so a statement's text takes one of few lengths and
//! stays prepared in the driver's cache (ARCHITECTURE.md, "Push statements").

use super::DbError;
use sqlx::{Arguments as _, Database, Encode, Type};

/// Keys per `IN (…)` list: well under SQLite's limit on bound parameters. A power of two,
/// so a full chunk is one of [`select_in`]'s list lengths.
pub(super) const PREFETCH_CHUNK: usize = 512;

/// Rows per multi-row `INSERT` (at 9 columns, 3,600 parameters: well under SQLite's 32,766
/// and PostgreSQL's 65,535).
pub(super) const INSERT_CHUNK: usize = 400;

/// One value of a multi-row `INSERT`, borrowed from the unsent rows.
pub(super) enum Param<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

/// `<head> (…), (…) <tail>` with one parenthesised group of placeholders per row, and its
/// arguments (placeholders written by the driver, as in [`select_in`]).
pub(super) fn insert_rows<'a, B: Database>(
    head: &str,
    rows: &[Vec<Param<'a>>],
    tail: &str,
) -> Result<(String, B::Arguments<'a>), DbError>
where
    &'a str: Encode<'a, B> + Type<B>,
    Option<&'a str>: Encode<'a, B>,
    i64: Encode<'a, B> + Type<B>,
    Option<i64>: Encode<'a, B>,
    bool: Encode<'a, B> + Type<B>,
{
    let mut sql = head.to_owned();
    let mut args = B::Arguments::default();
    for (r, row) in rows.iter().enumerate() {
        sql.push_str(if r == 0 { " (" } else { ", (" });
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            match *value {
                Param::Text(v) => args.add(v),
                Param::OptText(v) => args.add(v),
                Param::Int(v) => args.add(v),
                Param::OptInt(v) => args.add(v),
                Param::Bool(v) => args.add(v),
            }
            .map_err(sqlx::Error::Encode)?;
            args.format_placeholder(&mut sql)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    Ok((sql, args))
}

/// `<select> WHERE tenant = ? [AND <column> = ?] AND <key> IN (?, …)` and its arguments.
///
/// The list is padded to the next power of two by repeating its last key (which changes
/// nothing an `IN` matches), so a statement's text takes one of ten lengths instead of one
/// per batch size, and the driver's per-connection statement cache keeps each prepared
/// (ARCHITECTURE.md, "Push statements").
///
/// Each placeholder is written by the driver's arguments after its value is added, as sqlx's
/// `QueryBuilder` writes them (`?` on SQLite, `$n` on PostgreSQL). Not `QueryBuilder` itself:
/// its `build()` lends the arguments for the builder's own lifetime, which generic code cannot
/// shorten, so the builder could not be dropped after the query ran; here they move into it.
pub(super) fn select_in<'a, B: Database>(
    select: &str,
    tenant: &'a str,
    also: Option<(&str, &'a str)>,
    key: &str,
    keys: &[&'a str],
) -> Result<(String, B::Arguments<'a>), DbError>
where
    &'a str: Encode<'a, B> + Type<B>,
{
    let mut sql = select.to_owned();
    let mut args = B::Arguments::default();
    where_tenant::<B>(&mut sql, &mut args, tenant, also)?;
    sql.push_str(" AND ");
    sql.push_str(key);
    sql.push_str(" IN (");
    bind_padded::<B>(&mut sql, &mut args, keys)?;
    sql.push(')');
    Ok((sql, args))
}

/// `SELECT <columns>` of the rows of `<table>` with the given keys, one primary-key lookup
/// per key: `unnest(ARRAY[…]) CROSS JOIN LATERAL (SELECT … FROM <table> WHERE tenant = …
/// [AND <also> = …] AND <key> = k.wanted OFFSET 0)` (PostgreSQL only; the list padded as in
/// [`select_in`]).
///
/// Why: with `<key> IN (…)` PostgreSQL chose, whenever its statistics said the tenant (or
/// the tenant's collection) held few rows — a table not yet analysed, or grown since — a scan
/// of every row of the tenant (collection) that filters the keys, on every push, under the
/// tenant's lock: 11 ms (records, 24,000 rows) and 30 ms (ops, 47,000 rows, 64 keys) per push,
/// growing with the tenant. The push rate fell to 1,500–2,000 mutations/s while the driver
/// did 9,000–20,000. The lateral subquery (kept apart by `OFFSET 0`) can only be an index
/// lookup on the whole key: 0.2 ms for the same records, whatever the statistics say.
pub(super) fn by_key<'a, B: Database>(
    columns: &str,
    table: &str,
    tenant: &'a str,
    also: Option<(&str, &'a str)>,
    key: &str,
    keys: &[&'a str],
) -> Result<(String, B::Arguments<'a>), DbError>
where
    &'a str: Encode<'a, B> + Type<B>,
{
    let mut sql = format!("SELECT {columns} FROM unnest(ARRAY[");
    let mut args = B::Arguments::default();
    bind_padded::<B>(&mut sql, &mut args, keys)?;
    sql.push_str("]::text[]) AS k(wanted) CROSS JOIN LATERAL (SELECT ");
    sql.push_str(columns);
    sql.push_str(" FROM ");
    sql.push_str(table);
    where_tenant::<B>(&mut sql, &mut args, tenant, also)?;
    sql.push_str(" AND ");
    sql.push_str(key);
    sql.push_str(" = k.wanted OFFSET 0) r");
    Ok((sql, args))
}

/// Adds `value` to the arguments and writes its placeholder (`?` on SQLite, `$n` on
/// PostgreSQL), as sqlx's `QueryBuilder` does.
fn bind<'a, B: Database>(
    sql: &mut String,
    args: &mut B::Arguments<'a>,
    value: &'a str,
) -> Result<(), sqlx::Error>
where
    &'a str: Encode<'a, B> + Type<B>,
{
    args.add(value).map_err(sqlx::Error::Encode)?;
    args.format_placeholder(sql)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// ` WHERE tenant = … [AND <also> = …]`.
fn where_tenant<'a, B: Database>(
    sql: &mut String,
    args: &mut B::Arguments<'a>,
    tenant: &'a str,
    also: Option<(&str, &'a str)>,
) -> Result<(), sqlx::Error>
where
    &'a str: Encode<'a, B> + Type<B>,
{
    sql.push_str(" WHERE tenant = ");
    bind::<B>(sql, args, tenant)?;
    if let Some((column, value)) = also {
        sql.push_str(" AND ");
        sql.push_str(column);
        sql.push_str(" = ");
        bind::<B>(sql, args, value)?;
    }
    Ok(())
}

/// `keys` as comma-separated placeholders, padded with the last key to the next power of two
/// (see [`select_in`]).
fn bind_padded<'a, B: Database>(
    sql: &mut String,
    args: &mut B::Arguments<'a>,
    keys: &[&'a str],
) -> Result<(), sqlx::Error>
where
    &'a str: Encode<'a, B> + Type<B>,
{
    let last = keys.last().copied().unwrap_or_default();
    let padded = keys.iter().copied().chain(std::iter::repeat(last));
    for (i, k) in padded.take(keys.len().next_power_of_two()).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        bind::<B>(sql, args, k)?;
    }
    Ok(())
}
