//! The SQL layer both backends share. Every query is written once, generic over a
//! [`Dialect`]: the few real differences between SQLite and PostgreSQL (how a write
//! transaction begins, row locks, case-insensitive `LIKE`, timestamp columns, integer
//! casts) are its constants and functions, and the glue that sqlx cannot express
//! generically (binding, decoding, executing) is three one-line functions per backend.
//! Both backends take `$1`-style placeholders, so a statement's text is the same for both.

use std::future::Future;

use futures_util::stream::BoxStream;
use sqlx::query::Query;
use sqlx::{Database, Decode, Encode, Pool, Postgres, Sqlite, Type};

use crate::StoreError;

/// A value both backends can bind into a statement that lives for `'q`.
pub trait Param<'q>:
    Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres> + Send + 'q
{
}

impl<'q, T> Param<'q> for T where
    T: Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres> + Send + 'q
{
}

/// A value both backends can decode.
pub trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A statement with its arguments, ready to run on a connection of `DB`.
pub type Stmt<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// What differs between the backends.
pub trait Dialect: Database + Sized {
    /// The statement that starts a transaction that will write (SQLite takes the write
    /// lock up front, so concurrent writers queue instead of failing).
    const BEGIN_WRITE: Option<&'static str>;
    /// Taken before appending to the audit chain, so appends stay linear under
    /// concurrent writers (SQLite's write lock already is).
    const AUDIT_LOCK: Option<&'static str>;
    /// Appended to a `SELECT` of a row the transaction will change.
    const FOR_UPDATE: &'static str;
    /// Case-insensitive `LIKE`.
    const ILIKE: &'static str;
    /// The 64-bit integer type, for casts of sums.
    const INT8: &'static str;
    /// A query with one row when the index named `$1` exists in the store's schema.
    const INDEX_EXISTS: &'static str;

    /// Parameter `$n` in a timestamp column (bound as RFC 3339 text).
    fn ts_param(n: usize) -> String;
    /// A timestamp column read back as RFC 3339 UTC text, to the second.
    fn ts_text(column: &str) -> String;

    fn bind<'q, T: Param<'q>>(q: Stmt<'q, Self>, value: T) -> Stmt<'q, Self>;
    fn get<T: Column>(row: &Self::Row, i: usize) -> Result<T, sqlx::Error>;
    /// Runs `q` and returns the number of rows it changed.
    fn execute<'e>(
        c: &'e mut Self::Connection,
        q: Stmt<'e, Self>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'e;
    fn fetch_all<'e>(
        c: &'e mut Self::Connection,
        q: Stmt<'e, Self>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'e;
    fn fetch_optional<'e>(
        c: &'e mut Self::Connection,
        q: Stmt<'e, Self>,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 'e;
    fn fetch<'e>(
        c: &'e mut Self::Connection,
        q: Stmt<'e, Self>,
    ) -> BoxStream<'e, Result<Self::Row, sqlx::Error>>;
}

/// The glue of a [`Dialect`] implementation: sqlx's own methods, called on the backend's
/// concrete types (where sqlx's bounds hold), for the generic queries to use.
macro_rules! sqlx_glue {
    ($conn:ty) => {
        fn bind<'q, T: $crate::sql::Param<'q>>(
            q: $crate::sql::Stmt<'q, Self>,
            value: T,
        ) -> $crate::sql::Stmt<'q, Self> {
            q.bind(value)
        }

        fn get<T: $crate::sql::Column>(row: &Self::Row, i: usize) -> Result<T, sqlx::Error> {
            sqlx::Row::try_get(row, i)
        }

        async fn execute<'e>(
            c: &'e mut $conn,
            q: $crate::sql::Stmt<'e, Self>,
        ) -> Result<u64, sqlx::Error> {
            Ok(q.execute(c).await?.rows_affected())
        }

        async fn fetch_all<'e>(
            c: &'e mut $conn,
            q: $crate::sql::Stmt<'e, Self>,
        ) -> Result<Vec<Self::Row>, sqlx::Error> {
            q.fetch_all(c).await
        }

        async fn fetch_optional<'e>(
            c: &'e mut $conn,
            q: $crate::sql::Stmt<'e, Self>,
        ) -> Result<Option<Self::Row>, sqlx::Error> {
            q.fetch_optional(c).await
        }

        fn fetch<'e>(
            c: &'e mut $conn,
            q: $crate::sql::Stmt<'e, Self>,
        ) -> futures_util::stream::BoxStream<'e, Result<Self::Row, sqlx::Error>> {
            q.fetch(c)
        }
    };
}
pub(crate) use sqlx_glue;

/// A value of a statement built at run time (filters, multi-row statements).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bool(bool),
}

impl<'a> Value<'a> {
    pub fn bind<'q, DB: Dialect>(self, q: Stmt<'q, DB>) -> Stmt<'q, DB>
    where
        'a: 'q,
    {
        match self {
            Value::Int(v) => DB::bind(q, v),
            Value::OptInt(v) => DB::bind(q, v),
            Value::Text(v) => DB::bind(q, v),
            Value::OptText(v) => DB::bind(q, v),
            Value::Bool(v) => DB::bind(q, v),
        }
    }
}

/// A statement text with its values, for statements whose shape depends on the input:
/// `push_value` appends a `$n` placeholder and remembers the value.
#[derive(Debug, Default)]
pub struct Builder<'a> {
    pub text: String,
    values: Vec<Value<'a>>,
    /// Plain `?` placeholders instead of `$n` (see [`Builder::positional`]).
    positional: bool,
}

impl<'a> Builder<'a> {
    pub fn new(text: impl Into<String>) -> Self {
        Builder {
            text: text.into(),
            values: Vec::new(),
            positional: false,
        }
    }

    /// A builder whose placeholders are plain `?`, bound in order: for SQLite's bulk
    /// statements only (PostgreSQL has no `?`). sqlx asks SQLite for the name of every
    /// numbered placeholder it binds, which SQLite finds by a linear scan, so binding n
    /// `$n` values costs O(n²): with 16,000 values per statement that was 92 % of a
    /// SQLite load. Unnamed placeholders have no name to look up.
    pub fn positional(text: impl Into<String>) -> Self {
        Builder {
            positional: true,
            ..Builder::new(text)
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub fn push_value(&mut self, v: Value<'a>) -> &mut Self {
        self.values.push(v);
        if self.positional {
            self.text.push('?');
        } else {
            let n = self.values.len();
            self.text.push('$');
            self.text.push_str(&n.to_string());
        }
        self
    }

    /// `(v1, v2, …)`: the values as a parenthesised list.
    pub fn push_list(&mut self, values: impl IntoIterator<Item = Value<'a>>) -> &mut Self {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_value(v);
        }
        self.text.push(')');
        self
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn build<DB: Dialect>(&'a self) -> Stmt<'a, DB> {
        let mut q = sqlx::query::<DB>(sqlx::AssertSqlSafe(self.text.as_str()));
        for v in &self.values {
            q = v.clone().bind(q);
        }
        q
    }
}

/// `sqlx::query` for a statement text made at run time from constants of this crate.
pub fn query<'q, DB: Dialect>(text: &'q str) -> Stmt<'q, DB> {
    sqlx::query::<DB>(sqlx::AssertSqlSafe(text))
}

/// Decodes column `i` of `row`.
pub fn get<DB: Dialect, T: Column>(row: &DB::Row, i: usize) -> Result<T, StoreError> {
    Ok(DB::get(row, i)?)
}

/// A `u64` count as an SQL `LIMIT`/`OFFSET` value.
pub fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Refuses a database that has migrations this binary does not know.
pub fn check_schema(applied: Option<i64>, known: i64) -> Result<(), StoreError> {
    match applied {
        Some(found) if found > known => Err(StoreError::NewerSchema { found, known }),
        _ => Ok(()),
    }
}

/// A transaction that will write, begun the way the dialect wants.
pub async fn begin<DB: Dialect>(
    pool: &Pool<DB>,
) -> Result<sqlx::Transaction<'static, DB>, StoreError> {
    Ok(match DB::BEGIN_WRITE {
        None => pool.begin().await?,
        Some(stmt) => pool.begin_with(stmt).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_numbers_its_placeholders() {
        let mut b = Builder::new("SELECT 1 WHERE a = ");
        b.push_value(Value::Int(1))
            .push(" AND b IN ")
            .push_list([Value::Text("x"), Value::Text("y")]);
        assert_eq!(b.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(b.len(), 3);
    }

    #[tokio::test]
    async fn a_positional_builder_binds_thousands_of_values_in_order() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:")
            .await
            .expect("opens");
        let mut c = pool.acquire().await.expect("connects");
        Sqlite::execute(&mut c, query("CREATE TABLE t (i INTEGER, v TEXT)"))
            .await
            .expect("creates");
        let texts: Vec<String> = (0..4_000).map(|i| format!("v{}", i * 7 % 13)).collect();
        let mut b = Builder::positional("INSERT INTO t (i, v) VALUES ");
        for (i, t) in texts.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.push_list([Value::Int(i as i64), Value::Text(t)]);
        }
        assert!(b.text.ends_with("(?, ?)"), "plain placeholders");
        assert_eq!(
            Sqlite::execute(&mut c, b.build()).await.expect("inserts"),
            4_000
        );
        let rows = Sqlite::fetch_all(&mut c, query("SELECT i, v FROM t ORDER BY i"))
            .await
            .expect("reads");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(get::<Sqlite, i64>(r, 0).expect("i"), i as i64);
            assert_eq!(get::<Sqlite, String>(r, 1).expect("v"), texts[i]);
        }
    }
}
