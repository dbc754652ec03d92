//! The rows of a multi-row write, given once as serializable rows (a tuple, or a type that
//! serializes as one, in the statement's column order) and sent the way each backend
//! takes them best:
//!
//! - SQLite: a multi-row `VALUES` list, every value bound. Measured against rows read out
//!   of one JSON text by `json_each`, binding was as fast or faster (a 100,000-order pass:
//!   5.0 s bound, 5.5 s as JSON; ingest within 3%): SQLite spends about as long parsing a
//!   value out of JSON as binding it, and the JSON text costs its escaping besides.
//! - PostgreSQL: one JSON text, read by `jsonb_array_elements`. The statement's text no
//!   longer depends on its number of rows, so it is parsed and planned once per connection
//!   and kept prepared; a generated `VALUES` list was planned on every call (2026-12-01:
//!   64-client ingest 1,520–1,660 → 1,730–2,040 orders/s). Rows come out in array order,
//!   which is the order ids are drawn in.

use serde::Serialize;
use serde::ser::{self, Impossible};
use sqlx::AnyConnection;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Arguments, AssertSqlSafe};

use crate::{Placeholders, StoreError, StoreResult, UPSERT_ROWS_MAX};

/// Rows per statement: SQLite binds every value, so its chunks stay under its 32,766
/// parameters for the widest table (25 columns); PostgreSQL's take one.
pub(crate) fn rows_per_statement(placeholders: Placeholders) -> usize {
    match placeholders {
        Placeholders::Anonymous => UPSERT_ROWS_MAX,
        Placeholders::Numbered => 5_000,
    }
}

/// The rows of a statement, typed `types`, as an `INSERT`'s source or a `FROM (…) AS v`
/// whose columns are `column1`, `column2`, …: `VALUES (?, …), (…)` for `rows` rows on
/// SQLite, `SELECT CAST(r ->> 0 AS type) AS column1, … FROM jsonb_array_elements($1)` on
/// PostgreSQL. SQLite's list has no casts: a bound value has its type already, and casts
/// turn its multi-row `VALUES` into a subquery that, past a few hundred rows and without
/// table statistics, it joins by scanning the whole target table instead of looking each
/// row up by its key. Built from constants only.
///
/// SQLite's list has [`sqlite_rows_written`] rows, those past `rows` all nulls (bound by
/// [`rows_query`]). A statement that joins the list by its first column drops them (a null
/// equals nothing); one that takes every row of it leaves them out with `WHERE column1 IS
/// NOT NULL`, as `insert_rows_sql` does — so a row's first value is never null.
pub(crate) fn rows_source(placeholders: Placeholders, types: &[&str], rows: usize) -> String {
    match placeholders {
        Placeholders::Anonymous => {
            let row = format!("({})", vec!["?"; types.len()].join(", "));
            format!(
                "VALUES {}",
                vec![row.as_str(); sqlite_rows_written(rows)].join(", ")
            )
        }
        Placeholders::Numbered => {
            let columns: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("CAST(r ->> {i} AS {ty}) AS column{}", i + 1))
                .collect();
            format!(
                "SELECT {} FROM jsonb_array_elements(CAST($1 AS JSONB)) AS r",
                columns.join(", ")
            )
        }
    }
}

/// `sql` (written with [`rows_source`] for `rows.len()` rows) with `rows` bound: each value
/// on SQLite, one JSON text on PostgreSQL, whose statement is kept prepared.
pub(crate) fn rows_query<'q, T: Serialize>(
    placeholders: Placeholders,
    sql: String,
    rows: &[T],
) -> StoreResult<Query<'q, Any, AnyArguments>> {
    match placeholders {
        Placeholders::Anonymous => {
            let (count, written) = (rows.len(), sqlite_rows_written(rows.len()));
            let mut binder = Binder {
                arguments: AnyArguments::default(),
                bound: 0,
                row_starts: false,
            };
            let mut rows = rows.iter();
            if let Some(first) = rows.next() {
                first.serialize(RowBinder(&mut binder))?;
                // Room for every value at once, now that a row's width is known.
                let values = binder.bound * written;
                binder.arguments.reserve(values - binder.bound, 0);
            }
            for row in rows {
                row.serialize(RowBinder(&mut binder))?;
            }
            let per_row = binder.bound.checked_div(count).unwrap_or(0);
            while binder.bound < per_row * written {
                binder.bind(None::<i64>)?;
            }
            // Kept prepared: its text has one of a few shapes (see `sqlite_rows_written`).
            Ok(sqlx::query_with(AssertSqlSafe(sql), binder.arguments))
        }
        Placeholders::Numbered => {
            let text = serde_json::to_string(rows)
                .map_err(|e| StoreError::Corrupt(format!("rows as JSON: {e}")))?;
            Ok(sqlx::query(AssertSqlSafe(sql)).bind(text))
        }
    }
}

/// Runs one statement per chunk of a bulk write, in order, building each next one — its
/// rows serialized and bound — while the one before it runs: the database works on one
/// thread (SQLite's connection thread, or the server) while this one prepares the next.
/// `build` writes a chunk's statement; answers the rows each statement affected, in order.
pub(crate) async fn execute_chunks<C>(
    conn: &mut AnyConnection,
    chunks: impl Iterator<Item = C>,
    build: impl FnMut(C) -> StoreResult<Query<'static, Any, AnyArguments>>,
) -> StoreResult<Vec<u64>> {
    let mut queries = chunks.map(build);
    let mut affected = Vec::new();
    let mut next = queries.next();
    while let Some(query) = next {
        // `biased`: the statement is sent on its first poll, before the next is built.
        let (done, following) =
            tokio::join!(biased; query?.execute(&mut *conn), async { queries.next() });
        affected.push(done?.rows_affected());
        next = following;
    }
    Ok(affected)
}

/// [`execute_chunks`] for statements that answer rows (`RETURNING`): every chunk's rows,
/// in order.
pub(crate) async fn fetch_chunks<C>(
    conn: &mut AnyConnection,
    chunks: impl Iterator<Item = C>,
    build: impl FnMut(C) -> StoreResult<Query<'static, Any, AnyArguments>>,
) -> StoreResult<Vec<AnyRow>> {
    let mut queries = chunks.map(build);
    let mut rows = Vec::new();
    let mut next = queries.next();
    while let Some(query) = next {
        let (done, following) =
            tokio::join!(biased; query?.fetch_all(&mut *conn), async { queries.next() });
        rows.extend(done?);
        next = following;
    }
    Ok(rows)
}

/// Rows a SQLite statement written for `rows` rows lists: the next power of two, at most
/// [`UPSERT_ROWS_MAX`] (a chunk's most). A statement's text then takes one of a dozen
/// shapes, whatever the number of rows, and stays prepared: with a list as long as its
/// rows, each ingest batch's ~10 multi-row statements had texts never seen before, and
/// parsing them took 13% of SQLite's thread (64-client ingest, `perf`). Binding the null
/// rows costs less than that (docs/decisions.md).
pub(crate) fn sqlite_rows_written(rows: usize) -> usize {
    if rows <= 1 {
        rows
    } else {
        rows.next_power_of_two().min(UPSERT_ROWS_MAX)
    }
}

/// A statement's parameters, bound value by value as rows serialize.
struct Binder {
    arguments: AnyArguments,
    /// Values bound so far.
    bound: usize,
    /// The next value is a row's first, which must not be null: the list's null rows are
    /// told from the others by it (see [`rows_source`]).
    row_starts: bool,
}

impl Binder {
    fn bind<'q, T>(&mut self, value: T) -> Result<(), BindError>
    where
        T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        self.arguments
            .add(value)
            .map_err(|e| BindError::Custom(e.to_string()))?;
        self.bound += 1;
        self.row_starts = false;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum BindError {
    #[error("a row must serialize as a tuple of scalars; {0} cannot be bound")]
    Unsupported(&'static str),
    #[error("{0}")]
    Custom(String),
}

impl ser::Error for BindError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        BindError::Custom(msg.to_string())
    }
}

impl From<BindError> for StoreError {
    fn from(error: BindError) -> Self {
        StoreError::Corrupt(format!("binding rows: {error}"))
    }
}

/// Serializes one row: a tuple, each element one parameter.
struct RowBinder<'a>(&'a mut Binder);

impl ser::SerializeTuple for RowBinder<'_> {
    type Ok = ();
    type Error = BindError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BindError> {
        value.serialize(ValueBinder(self.0))
    }
    fn end(self) -> Result<(), BindError> {
        Ok(())
    }
}

/// Refuses, as `BindError::Unsupported`, what neither a row nor a value can be.
macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $out:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$out, BindError> {
            Err(BindError::Unsupported(stringify!($method)))
        })*
    };
}

/// What rows and values serialize alike: a newtype as what it wraps; no enum variant, map,
/// struct, unit, character or byte string.
macro_rules! neither_row_nor_value {
    () => {
        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<(), BindError> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), BindError> {
            Err(BindError::Unsupported("a variant"))
        }
        unsupported! {
            serialize_char(char) -> ();
            serialize_bytes(&[u8]) -> ();
            serialize_unit() -> ();
            serialize_unit_struct(&'static str) -> ();
            serialize_unit_variant(&'static str, u32, &'static str) -> ();
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
            serialize_map(Option<usize>) -> Self::SerializeMap;
            serialize_struct(&'static str, usize) -> Self::SerializeStruct;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
        }
    };
}

impl<'a> ser::Serializer for RowBinder<'a> {
    type Ok = ();
    type Error = BindError;
    type SerializeSeq = Impossible<(), BindError>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), BindError>;
    type SerializeTupleVariant = Impossible<(), BindError>;
    type SerializeMap = Impossible<(), BindError>;
    type SerializeStruct = Impossible<(), BindError>;
    type SerializeStructVariant = Impossible<(), BindError>;

    fn serialize_tuple(self, _: usize) -> Result<Self, BindError> {
        self.0.row_starts = true;
        Ok(self)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), BindError> {
        Err(BindError::Unsupported("an optional row"))
    }
    neither_row_nor_value!();
    unsupported! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_str(&str) -> ();
        serialize_none() -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
    }
}

/// Binds integers that fit in one as `i64`, the only integer both backends store.
macro_rules! bind_as_i64 {
    ($($method:ident($ty:ty);)*) => {
        $(fn $method(self, v: $ty) -> Result<(), BindError> {
            self.0.bind(i64::from(v))
        })*
    };
}

/// Serializes one value of a row as one bound parameter. Integers bind as `i64`, text as
/// text, `None` as a null.
struct ValueBinder<'a>(&'a mut Binder);

impl<'a> ser::Serializer for ValueBinder<'a> {
    type Ok = ();
    type Error = BindError;
    type SerializeSeq = Impossible<(), BindError>;
    type SerializeTuple = Impossible<(), BindError>;
    type SerializeTupleStruct = Impossible<(), BindError>;
    type SerializeTupleVariant = Impossible<(), BindError>;
    type SerializeMap = Impossible<(), BindError>;
    type SerializeStruct = Impossible<(), BindError>;
    type SerializeStructVariant = Impossible<(), BindError>;

    fn serialize_bool(self, v: bool) -> Result<(), BindError> {
        self.0.bind(v)
    }
    bind_as_i64! {
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
    }
    fn serialize_u64(self, v: u64) -> Result<(), BindError> {
        let v = i64::try_from(v).map_err(|_| BindError::Unsupported("a u64 past i64"))?;
        self.0.bind(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), BindError> {
        self.0.bind(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), BindError> {
        self.0.bind(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), BindError> {
        // Owned, as before: a bound value must outlive the row serde lends it from.
        self.0.bind(v.to_owned())
    }
    fn serialize_none(self) -> Result<(), BindError> {
        if self.0.row_starts {
            return Err(BindError::Unsupported("a null as a row's first value"));
        }
        // SQLite keeps no type with a null.
        self.0.bind(None::<i64>)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), BindError> {
        value.serialize(self)
    }
    neither_row_nor_value!();
    unsupported! {
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::{execute_chunks, fetch_chunks, rows_query};
    use crate::{Ids, Placeholders, Store, StoreOptions, insert_rows_sql};

    type Written = (i64, String, Option<f64>, Option<i64>);

    /// Rows written as each backend takes them read back as given: integers to the last
    /// one, text with quotes and non-ASCII, reals, nulls.
    async fn rows_round_trip(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        let mut conn = store.pool().acquire().await.expect("connection");
        let placeholders = Placeholders::of(&conn);
        sqlx::query(
            "CREATE TEMPORARY TABLE written (a BIGINT, b TEXT, c DOUBLE PRECISION, d BIGINT)",
        )
        .execute(&mut *conn)
        .await
        .expect("table");
        let rows: Vec<Written> = vec![
            (
                i64::MAX,
                "it's \"quoted\", ✓ \\ done".into(),
                Some(12.971_599),
                None,
            ),
            (i64::MIN, String::new(), Some(-0.1), Some(7)),
            (0, "[1, 2]".into(), None, Some(-1)),
        ];
        let columns = [
            ("a", "BIGINT"),
            ("b", "TEXT"),
            ("c", "DOUBLE PRECISION"),
            ("d", "BIGINT"),
        ];
        let sql = insert_rows_sql(
            placeholders,
            "written",
            &columns,
            Ids::Drawn,
            "",
            rows.len(),
        );
        rows_query(placeholders, sql, &rows)
            .expect("bound")
            .execute(&mut *conn)
            .await
            .expect("insert");
        let read: Vec<Written> = sqlx::query("SELECT a, b, c, d FROM written ORDER BY a DESC")
            .fetch_all(&mut *conn)
            .await
            .expect("read")
            .iter()
            .map(|row| {
                (
                    row.try_get("a").expect("a"),
                    row.try_get("b").expect("b"),
                    row.try_get("c").expect("c"),
                    row.try_get("d").expect("d"),
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![rows[0].clone(), rows[2].clone(), rows[1].clone()]
        );
    }

    /// Chunks run in order, each built while the one before runs; each answers its count,
    /// and a chunk that cannot be built stops the write with an error.
    async fn chunks_run_in_order(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        let mut conn = store.pool().acquire().await.expect("connection");
        let placeholders = Placeholders::of(&conn);
        sqlx::query("CREATE TEMPORARY TABLE chunked (n BIGINT, label TEXT)")
            .execute(&mut *conn)
            .await
            .expect("table");
        let statement = |chunk: &[(i64, String)]| {
            let sql = insert_rows_sql(
                placeholders,
                "chunked",
                &[("n", "BIGINT"), ("label", "TEXT")],
                Ids::Drawn,
                "",
                chunk.len(),
            );
            rows_query(placeholders, sql, chunk)
        };
        let rows: Vec<(i64, String)> = (0..7).map(|n| (n, format!("row {n}"))).collect();
        let affected = execute_chunks(&mut conn, rows.chunks(3), statement)
            .await
            .expect("written");
        assert_eq!(affected, vec![3, 3, 1]);
        let returned = fetch_chunks(&mut conn, rows.chunks(2), |chunk| {
            let sql = format!(
                "SELECT column1 AS n FROM ({}) AS v WHERE column1 IS NOT NULL",
                super::rows_source(placeholders, &["BIGINT", "TEXT"], chunk.len())
            );
            rows_query(placeholders, sql, chunk)
        })
        .await
        .expect("read");
        let mut read: Vec<i64> = returned
            .iter()
            .map(|r| r.try_get("n").expect("n"))
            .collect();
        read.sort_unstable();
        assert_eq!(read, (0..7).collect::<Vec<_>>());
        let error =
            execute_chunks(
                &mut conn,
                rows.chunks(3).map(Some).chain([None]),
                |chunk| match chunk {
                    Some(chunk) => statement(chunk),
                    None => Err(crate::StoreError::Corrupt(
                        "this chunk cannot be built".into(),
                    )),
                },
            )
            .await
            .expect_err("a chunk that cannot be built");
        assert!(error.to_string().contains("cannot be built"), "{error}");
        let (written,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM chunked")
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        assert_eq!(
            written, 14,
            "the chunks before the bad one ran, in one connection"
        );
    }

    #[tokio::test]
    async fn sqlite_rows_are_bound_value_by_value() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        rows_round_trip(&url).await;
    }

    #[tokio::test]
    async fn sqlite_chunks_run_in_order() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        chunks_run_in_order(&url).await;
    }

    #[tokio::test]
    async fn postgres_chunks_run_in_order() {
        let url = std::env::var("OMS_TEST_PG_URL").expect(
            "OMS_TEST_PG_URL is not set: run the suite with ./scripts/test, which starts a \
             throwaway PostgreSQL cluster",
        );
        chunks_run_in_order(&url).await;
    }

    #[tokio::test]
    async fn postgres_rows_travel_as_one_json_text() {
        let url = std::env::var("OMS_TEST_PG_URL").expect(
            "OMS_TEST_PG_URL is not set: run the suite with ./scripts/test, which starts a \
             throwaway PostgreSQL cluster",
        );
        rows_round_trip(&url).await;
    }

    /// A row that is not a tuple of scalars is refused, not half bound.
    #[test]
    fn a_row_of_the_wrong_shape_is_an_error() {
        let nested = vec![(1_i64, vec![2_i64])];
        let error = rows_query(Placeholders::Anonymous, "SELECT ?, ?".into(), &nested)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("cannot be bound"), "{error}");
        let map = vec![std::collections::BTreeMap::from([("a", 1_i64)])];
        assert!(rows_query(Placeholders::Anonymous, "SELECT ?".into(), &map).is_err());
        // SQLite's padding rows are the ones whose first value is null.
        let null_first = vec![(None::<i64>, 1_i64)];
        let error = rows_query(Placeholders::Anonymous, "SELECT ?, ?".into(), &null_first)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("first value"), "{error}");
        assert!(
            rows_query(
                Placeholders::Anonymous,
                "SELECT ?, ?".into(),
                &[(1_i64, None::<i64>)]
            )
            .is_ok(),
            "a null further along a row is a value like any other"
        );
    }

    /// SQLite's lists come in a dozen lengths, so a statement's text repeats (and stays
    /// prepared) whatever its number of rows.
    #[test]
    fn sqlite_lists_come_in_few_lengths() {
        use super::{rows_source, sqlite_rows_written};
        let lengths: std::collections::BTreeSet<usize> = (0..=crate::UPSERT_ROWS_MAX)
            .map(sqlite_rows_written)
            .collect();
        assert_eq!(
            lengths.into_iter().collect::<Vec<_>>(),
            [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
        );
        for rows in 0..=crate::UPSERT_ROWS_MAX {
            assert!(sqlite_rows_written(rows) >= rows, "{rows} rows fit");
        }
        let types = ["BIGINT", "TEXT"];
        assert_eq!(
            rows_source(Placeholders::Anonymous, &types, 33),
            rows_source(Placeholders::Anonymous, &types, 64)
        );
        assert_ne!(
            rows_source(Placeholders::Anonymous, &types, 32),
            rows_source(Placeholders::Anonymous, &types, 33)
        );
        assert_eq!(
            rows_source(Placeholders::Numbered, &types, 3),
            rows_source(Placeholders::Numbered, &types, 1_000),
            "PostgreSQL's rows travel as one JSON text"
        );
    }
}
