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
}
