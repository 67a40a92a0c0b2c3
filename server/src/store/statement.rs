//! A statement with its values bound, independent of the driver that runs it: sqlx for PostgreSQL (and SQLite
//! transactions with reads in them), rusqlite for SQLite's group-commit writer and hot-path reads. The SQL is the
//! same for both: `$1`, `$2`, … name the values, in binding order, and may repeat.

use sqlx::Row;

use super::StoreError;

/// One bound value (`None`: SQL `NULL` of that type).
#[derive(Debug)]
pub enum Value {
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A double.
    Real(Option<f64>),
    /// Text.
    Text(Option<String>),
    /// Bytes.
    Blob(Option<Vec<u8>>),
}

/// SQL text and its bound values.
#[derive(Debug)]
pub struct Statement {
    sql: &'static str,
    values: Vec<Value>,
}

impl Statement {
    /// A statement with no values bound yet.
    pub fn new(sql: &'static str) -> Self {
        Statement {
            sql,
            values: Vec::new(),
        }
    }

    /// Binds the next value (`$n` for the n-th call).
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    /// The statement as an sqlx query (values bound with the same Rust types as before, so PostgreSQL infers
    /// the same column types).
    pub fn into_sqlx(self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(self.sql);
        for value in self.values {
            query = match value {
                Value::Int(v) => query.bind(v),
                Value::Real(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
                Value::Blob(v) => query.bind(v),
            };
        }
        query
    }

    /// Runs the statement on a rusqlite connection (prepared once per connection and cached); returns the rows
    /// it changed.
    pub fn execute(&self, conn: &rusqlite::Connection) -> rusqlite::Result<u64> {
        let mut statement = self.prepare(conn)?;
        Ok(statement.raw_execute()? as u64)
    }

    /// Runs the query on a rusqlite connection and maps its first row, if any.
    pub fn query_first<T>(
        &self,
        conn: &rusqlite::Connection,
        map: impl FnOnce(&rusqlite::Row<'_>) -> T,
    ) -> rusqlite::Result<Option<T>> {
        let mut statement = self.prepare(conn)?;
        let mut rows = statement.raw_query();
        Ok(rows.next()?.map(map))
    }

    /// The cached prepared statement with every value bound.
    fn prepare<'c>(
        &self,
        conn: &'c rusqlite::Connection,
    ) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
        let mut statement = conn.prepare_cached(self.sql)?;
        for index in 1..=statement.parameter_count() {
            // `$n` names the n-th bound value; SQLite gives a repeated name one index.
            let name = statement.parameter_name(index).unwrap_or("?");
            let value = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| self.values.get(n.checked_sub(1)?))
                .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?;
            match value {
                Value::Int(v) => statement.raw_bind_parameter(index, v)?,
                Value::Real(v) => statement.raw_bind_parameter(index, v)?,
                Value::Text(v) => statement.raw_bind_parameter(index, v)?,
                Value::Blob(v) => statement.raw_bind_parameter(index, v)?,
            }
        }
        Ok(statement)
    }
}

/// Typed access to a result row of either driver, so one mapping serves both.
pub trait Columns {
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or(StoreError::UnexpectedNull(i))
    }
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A text column.
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or(StoreError::UnexpectedNull(i))
    }
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// A blob column.
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_blob(i)?.ok_or(StoreError::UnexpectedNull(i))
    }
    /// A nullable blob column.
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Columns for sqlx::any::AnyRow {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(StoreError::Sqlite)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(StoreError::Sqlite)
    }
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(i).map_err(StoreError::Sqlite)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(Some(v))
    }
}

impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        Value::Real(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(Some(v))
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(Some(v.to_vec()))
    }
}

impl From<Option<Vec<u8>>> for Value {
    fn from(v: Option<Vec<u8>>) -> Self {
        Value::Blob(v)
    }
}

#[cfg(test)]
mod tests {
    use super::Statement;

    #[test]
    fn repeated_and_reordered_placeholders_bind_by_number() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c BLOB, d REAL)")
            .unwrap();
        let insert =
            Statement::new("INSERT INTO t (b, a, c, d) SELECT $2, $1, $3, $4 WHERE $1 > 0")
                .bind(7_i64)
                .bind("seven")
                .bind(None::<Vec<u8>>)
                .bind(0.5);
        assert_eq!(insert.execute(&conn).unwrap(), 1);
        let skipped = Statement::new("INSERT INTO t (a) SELECT $1 WHERE $1 > 0").bind(-1_i64);
        assert_eq!(skipped.execute(&conn).unwrap(), 0);
        let unbound = Statement::new("INSERT INTO t (a, b) VALUES ($1, $2)").bind(1_i64);
        assert!(matches!(
            unbound.execute(&conn),
            Err(rusqlite::Error::InvalidParameterName(name)) if name == "$2"
        ));
        let row: (i64, String, Option<Vec<u8>>, f64) = conn
            .query_row("SELECT a, b, c, d FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(row, (7, "seven".to_owned(), None, 0.5));
    }
}
