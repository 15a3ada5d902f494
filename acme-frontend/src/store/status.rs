//! The protocol's status enums as columns: stored as their RFC 8555
//! spelling (TEXT), read back as the enum. A value that does not parse is
//! a deserialization error, never a status compared as a string.
//!
//! The enums live in `protocol/`, which must not import diesel; the diesel
//! traits are implemented here, by hand, for each of them and each dialect.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::expression::AsExpression;
use diesel::internal::derives::as_expression::Bound;
use diesel::pg::Pg;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Nullable, Text};
use diesel::sqlite::Sqlite;

use crate::protocol::{
    AccountStatus, AuthzStatus, CertificateStatus, ChallengeStatus, OrderStatus,
};

macro_rules! text_column_on {
    ($db:ty, $ty:ty) => {
        impl ToSql<Text, $db> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, $db>) -> serialize::Result {
                <str as ToSql<Text, $db>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, $db> for $ty {
            fn from_sql(bytes: <$db as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, $db>>::from_sql(bytes)?;
                <$ty>::parse(&text).ok_or_else(|| {
                    format!(
                        concat!("stored ", stringify!($ty), " {:?} does not parse"),
                        text
                    )
                    .into()
                })
            }
        }

        impl Queryable<Text, $db> for $ty {
            type Row = Self;
            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }
    };
}

macro_rules! text_column {
    ($($ty:ty),+ $(,)?) => {$(
        text_column_on!(Sqlite, $ty);
        text_column_on!(Pg, $ty);

        impl AsExpression<Text> for $ty {
            type Expression = Bound<Text, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl AsExpression<Nullable<Text>> for $ty {
            type Expression = Bound<Nullable<Text>, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl<'a> AsExpression<Text> for &'a $ty {
            type Expression = Bound<Text, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl<'a> AsExpression<Nullable<Text>> for &'a $ty {
            type Expression = Bound<Nullable<Text>, Self>;
            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }
    )+};
}

text_column!(
    AccountStatus,
    OrderStatus,
    AuthzStatus,
    ChallengeStatus,
    CertificateStatus,
);

/// A fixed piece of SQL text as an expression of type `ST`: like diesel's
/// `dsl::sql`, except that statements holding it stay in diesel's
/// statement cache (`dsl::sql` marks them unsafe to cache, since its text
/// may differ between calls; this text is a `&'static str`, never built
/// from input). Made by [`static_sql`] and [`lit`].
#[derive(Debug, Clone, Copy)]
pub struct StaticSql<ST> {
    sql: &'static str,
    /// Written between single quotes: a string literal.
    quoted: bool,
    _type: std::marker::PhantomData<ST>,
}

/// `sql`, written at its call site, as an expression of type `ST`.
pub fn static_sql<ST>(sql: &'static str) -> StaticSql<ST> {
    StaticSql {
        sql,
        quoted: false,
        _type: std::marker::PhantomData,
    }
}

/// A status as a literal in the SQL text (`'pending'`) instead of a bound
/// parameter, for `WHERE` terms on the tables with partial indexes on
/// `status` (`orders`, `authorizations`, `challenges`).
///
/// Why: SQLite's planner asks whether a term such as `status = ?` implies a
/// partial index's condition by looking at the bound value, and marks the
/// parameter so that binding it again expires the statement. diesel binds
/// every parameter on every execution, so such a statement was parsed and
/// planned again each time it ran (two re-prepares per issuance, ≈ 3 % of
/// the frontend's instructions). A literal keeps it prepared. The text is
/// the enum's fixed RFC 8555 spelling (`[a-z]` only).
pub fn lit(status: impl StatusText) -> StaticSql<Text> {
    StaticSql {
        sql: status.text(),
        quoted: true,
        _type: std::marker::PhantomData,
    }
}

/// Statuses [`lit`] writes as literals.
pub trait StatusText {
    /// The status's RFC 8555 spelling.
    fn text(self) -> &'static str;
}

macro_rules! status_text {
    ($($ty:ty),+ $(,)?) => {$(
        impl StatusText for $ty {
            fn text(self) -> &'static str {
                self.as_str()
            }
        }
    )+};
}

status_text!(OrderStatus, AuthzStatus, ChallengeStatus);

impl<ST: diesel::expression::TypedExpressionType> diesel::expression::Expression for StaticSql<ST> {
    type SqlType = ST;
}

impl<ST, DB: Backend> diesel::query_builder::QueryFragment<DB> for StaticSql<ST> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        if self.quoted {
            debug_assert!(self.sql.bytes().all(|b| b.is_ascii_lowercase()));
            out.push_sql("'");
            out.push_sql(self.sql);
            out.push_sql("'");
        } else {
            out.push_sql(self.sql);
        }
        Ok(())
    }
}

impl<ST> diesel::query_builder::QueryId for StaticSql<ST> {
    type QueryId = ();
    // The text is part of the statement: statements are cached by their
    // text, never by a type id that two texts would share.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, QS> diesel::expression::AppearsOnTable<QS> for StaticSql<ST> where Self: diesel::Expression {}

impl<ST, QS> diesel::expression::SelectableExpression<QS> for StaticSql<ST> where
    Self: diesel::Expression
{
}

impl<ST, GB> diesel::expression::ValidGrouping<GB> for StaticSql<ST> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use super::*;

    #[test]
    fn statuses_round_trip_and_garbage_is_an_error() {
        let mut c = SqliteConnection::establish(":memory:").expect("db");
        for s in [OrderStatus::Pending, OrderStatus::Processing] {
            let back: OrderStatus = diesel::select(s.into_sql::<Text>())
                .get_result(&mut c)
                .expect("round trip");
            assert_eq!(back, s);
        }
        let garbage = diesel::select("pendng".into_sql::<Text>()).get_result::<OrderStatus>(&mut c);
        assert!(garbage.is_err());
    }

    #[test]
    fn a_literal_status_is_sql_text_not_a_parameter() {
        use crate::store::schema::authorizations;
        let q = authorizations::table
            .filter(authorizations::account_id.eq("a"))
            .filter(authorizations::status.eq(lit(AuthzStatus::Valid)))
            .select(authorizations::id);
        let sql = diesel::debug_query::<Sqlite, _>(&q).to_string();
        assert!(sql.contains("`status` = 'valid'"), "{sql}");
        assert!(sql.ends_with(r#"-- binds: ["a"]"#), "{sql}");
    }

    /// Re-prepares of one statement executed twice with its parameters
    /// bound anew each time (as diesel does), on a table with a partial
    /// index on `status` like `authorizations`.
    #[allow(unsafe_code)] // SQLite's C API: diesel does not expose the statement.
    fn reprepares(sql: &str, binds: usize) -> i32 {
        use libsqlite3_sys as ffi;
        use std::ffi::CString;
        // SAFETY: a private in-memory database; every pointer passed comes
        // from SQLite itself or from a live CString, and is finalized/closed
        // before returning.
        unsafe {
            let mut db = std::ptr::null_mut();
            let name = CString::new(":memory:").expect("no NUL");
            assert_eq!(ffi::sqlite3_open(name.as_ptr(), &mut db), ffi::SQLITE_OK);
            let schema = CString::new(
                "CREATE TABLE authorizations (id TEXT PRIMARY KEY, account_id TEXT, \
                 status TEXT, expires INTEGER); \
                 CREATE INDEX idx_authz_account_pending ON authorizations(account_id, expires) \
                 WHERE status = 'pending';",
            )
            .expect("no NUL");
            let rc = ffi::sqlite3_exec(
                db,
                schema.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            let sql = CString::new(sql).expect("no NUL");
            let mut stmt = std::ptr::null_mut();
            let rc = ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr(),
                -1,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            for _ in 0..3 {
                for i in 1..=binds {
                    let v = if i == 1 { c"acct" } else { c"valid" };
                    ffi::sqlite3_bind_text(stmt, i as i32, v.as_ptr(), -1, ffi::SQLITE_STATIC());
                }
                assert_eq!(ffi::sqlite3_step(stmt), ffi::SQLITE_DONE);
                ffi::sqlite3_reset(stmt);
            }
            let n = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
            ffi::sqlite3_finalize(stmt);
            ffi::sqlite3_close(db);
            n
        }
    }

    #[test]
    fn a_bound_status_reprepares_every_execution_and_a_literal_does_not() {
        let bound = reprepares(
            "SELECT id FROM authorizations WHERE account_id = ? AND status = ? AND expires > 0",
            2,
        );
        let literal = reprepares(
            "SELECT id FROM authorizations WHERE account_id = ? AND status = 'valid' \
             AND expires > 0",
            1,
        );
        assert!(bound >= 2, "a bound status re-prepared {bound} times");
        assert_eq!(literal, 0);
    }
}
