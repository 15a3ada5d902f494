//! Deleting what expired long ago: orders, authorizations and challenges
//! past the retention period (`[server] retention_days`), in small batches
//! (see `jobs::retention`, which drives them).
//!
//! What is kept, whatever its age:
//! - every certificate row and its revocation (CRLs and ARI need them);
//! - the order of every certificate (`certificates.order_id` refers to it),
//!   with its authorizations and their challenges: they are the validation
//!   evidence of an issued certificate and live as long as it does;
//! - an order still `processing` (the recovery sweep owns it);
//! - an authorization that any kept order links to, however old it is (an
//!   authorization can serve several orders).
//!
//! **Invariant:** no delete breaks a foreign key: an order goes with its
//! `order_authorizations` links and its STAR terms (`star_orders`), an authorization only once no link to it
//! is left, and with its challenges; each batch is one transaction.

use super::{Conn, Query};
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::schema::{
    authorizations, certificates, challenges, order_authorizations, orders, star_orders,
};
use super::status::lit;
use super::write_tx;
use crate::error::Error;
use crate::protocol::OrderStatus;

/// What one batch deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Orders deleted (with their authorization links).
    pub orders: usize,
    /// Authorizations deleted.
    pub authorizations: usize,
    /// Challenges deleted (of those authorizations).
    pub challenges: usize,
}

impl Pruned {
    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds another batch's counts.
    pub fn add(&mut self, other: Pruned) {
        self.orders += other.orders;
        self.authorizations += other.authorizations;
        self.challenges += other.challenges;
    }
}

/// Deletes at most `limit` orders and at most `limit` authorizations that
/// expired before `cutoff` (Unix seconds) and that nothing kept needs (see
/// the module's header), in one transaction. A batch that deletes fewer
/// than `limit` of each means nothing more is due.
pub fn prune_batch(conn: &mut Conn, cutoff: i64, limit: i64) -> Result<Pruned, Error> {
    write_tx(conn, |conn| {
        let order_ids: Vec<String> = orders::table
            .filter(orders::expires.lt(cutoff))
            .filter(orders::status.ne(lit(OrderStatus::Processing)))
            .filter(not(exists(
                certificates::table.filter(certificates::order_id.eq(orders::id)),
            )))
            .select(orders::id)
            .limit(limit)
            .fetch_all(conn)?;
        diesel::delete(
            order_authorizations::table.filter(order_authorizations::order_id.eq_any(&order_ids)),
        )
        .exec(conn)?;
        // A STAR order that never got a certificate goes with its terms.
        diesel::delete(star_orders::table.filter(star_orders::order_id.eq_any(&order_ids)))
            .exec(conn)?;
        let orders =
            diesel::delete(orders::table.filter(orders::id.eq_any(&order_ids))).exec(conn)?;

        // After the orders: an authorization whose last link went with them
        // is free now.
        let authz_ids: Vec<String> = authorizations::table
            .filter(authorizations::expires.lt(cutoff))
            .filter(not(exists(
                order_authorizations::table
                    .filter(order_authorizations::authz_id.eq(authorizations::id)),
            )))
            .select(authorizations::id)
            .limit(limit)
            .fetch_all(conn)?;
        let challenges =
            diesel::delete(challenges::table.filter(challenges::authz_id.eq_any(&authz_ids)))
                .exec(conn)?;
        let authorizations =
            diesel::delete(authorizations::table.filter(authorizations::id.eq_any(&authz_ids)))
                .exec(conn)?;
        Ok(Pruned {
            orders,
            authorizations,
            challenges,
        })
    })
}
