//! Row types: plain data moved between the store and the handlers.

use diesel::prelude::*;

use super::schema::*;
use crate::protocol::{
    AccountStatus, AuthzStatus, CertificateStatus, ChallengeStatus, OrderStatus,
};

/// `accounts` row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct AccountRow {
    /// Account id (the last segment of its URL).
    pub id: String,
    /// `valid` or `deactivated`.
    pub status: AccountStatus,
    /// JSON array of contact URIs.
    pub contact: String,
    /// Canonical public JWK JSON.
    pub jwk: String,
    /// RFC 7638 thumbprint.
    pub jwk_thumbprint: String,
    /// Whether the ToS were agreed to.
    pub tos_agreed: bool,
    /// Created, Unix seconds.
    pub created: i64,
    /// Updated, Unix seconds.
    pub updated: i64,
}

/// `orders` row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct OrderRow {
    /// Order id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Stored status (see `protocol::order::order_status`).
    pub status: OrderStatus,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// JSON `[{type,value}]`.
    pub identifiers: String,
    /// Requested notBefore.
    pub not_before: Option<i64>,
    /// Requested notAfter.
    pub not_after: Option<i64>,
    /// Problem JSON when invalid.
    pub error: Option<String>,
    /// The CSR while the order is processing.
    pub csr: Option<Vec<u8>>,
    /// The issued certificate.
    pub certificate_id: Option<String>,
    /// Created, Unix seconds.
    pub created: i64,
    /// Updated, Unix seconds.
    pub updated: i64,
    /// The requested certificate profile.
    pub profile: Option<String>,
    /// The ARI certificate identifier of the certificate this order
    /// replaces (RFC 9773 §5), as the client sent it.
    pub replaces: Option<String>,
    /// The id of that certificate's row.
    pub replaces_certificate: Option<String>,
}

/// `authorizations` row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorizations)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct AuthzRow {
    /// Authorization id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Stored status.
    pub status: AuthzStatus,
    /// `dns` or `ip`.
    pub identifier_type: String,
    /// The identifier without a wildcard label.
    pub identifier_value: String,
    /// Whether the order asked for `*.` + value.
    pub wildcard: bool,
    /// The token shared by the authorization's challenges.
    pub token: String,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// Problem JSON when invalid.
    pub error: Option<String>,
    /// Created, Unix seconds.
    pub created: i64,
    /// Updated, Unix seconds.
    pub updated: i64,
    /// The validator's signed statement (JSON) once valid.
    pub statement: Option<String>,
    /// RFC 9444: the validation also covers the names below the
    /// identifier.
    pub subdomain_auth_allowed: bool,
}

/// `order_authorizations` row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = order_authorizations)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct OrderAuthzRow {
    /// Order.
    pub order_id: String,
    /// Authorization.
    pub authz_id: String,
    /// Position in the order's list.
    pub position: i32,
}

/// `challenges` row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = challenges)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct ChallengeRow {
    /// `<authz id>/<type>`.
    pub id: String,
    /// Parent authorization.
    pub authz_id: String,
    /// `http-01`, `dns-01`, `tls-alpn-01`.
    pub kind: String,
    /// Stored status.
    pub status: ChallengeStatus,
    /// When it became valid.
    pub validated: Option<i64>,
    /// Problem JSON when invalid.
    pub error: Option<String>,
    /// Validation record JSON.
    pub validation_record: Option<String>,
    /// Created, Unix seconds.
    pub created: i64,
    /// Updated, Unix seconds.
    pub updated: i64,
    /// onion-csr-01: the CSR posted in the response (base64url DER).
    pub response: Option<String>,
}

/// `certificates` row.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = certificates)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct CertRow {
    /// Certificate id (URL segment).
    pub id: String,
    /// The order it was issued for.
    pub order_id: String,
    /// Owner.
    pub account_id: String,
    /// Lower-case hex serial.
    pub serial_number: String,
    /// `valid` or `revoked`.
    pub status: CertificateStatus,
    /// Leaf DER.
    pub der: Vec<u8>,
    /// Served PEM chain.
    pub pem: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// CRL reason code.
    pub revocation_reason: Option<i32>,
    /// Created, Unix seconds.
    pub created: i64,
    /// Index in the signer's transparency log; `None` when it was off.
    pub mtc_log_index: Option<i64>,
}

impl OrderRow {
    /// The status clients see as of `now`, derived from the stored status,
    /// the expiry and the authorizations' statuses
    /// ([`crate::protocol::order::order_status`]).
    pub fn status_at(&self, authzs: &[AuthzRow], now: i64) -> OrderStatus {
        let statuses: Vec<AuthzStatus> = authzs.iter().map(|a| a.status_at(now)).collect();
        crate::protocol::order::order_status(self.status, self.expires, &statuses, now)
    }

    /// The order's identifiers, parsed from their stored JSON.
    pub fn identifiers(&self) -> Result<Vec<shared_proto::Identifier>, crate::error::Error> {
        let corrupt = || crate::error::DatabaseError::Corrupt {
            what: "order identifiers",
            value: self.identifiers.clone(),
        };
        let wire: Vec<crate::protocol::identifier::WireIdentifier> =
            serde_json::from_str(&self.identifiers).map_err(|_| corrupt())?;
        wire.iter()
            .map(|w| crate::protocol::identifier::parse(w).map_err(|_| corrupt().into()))
            .collect()
    }
}

impl AuthzRow {
    /// The status clients see as of `now` (expired once past `expires`).
    pub fn status_at(&self, now: i64) -> AuthzStatus {
        crate::protocol::order::authz_status(self.status, self.expires, now)
    }
}

/// `star_orders` row: the STAR terms and schedule of an auto-renewal order
/// (RFC 8739).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = star_orders)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct StarRow {
    /// The order.
    pub order_id: String,
    /// `start-date`, if the order gave one.
    pub start_date: Option<i64>,
    /// `end-date`.
    pub end_date: i64,
    /// `lifetime`, seconds.
    pub lifetime: i64,
    /// `lifetime-adjust`, seconds.
    pub lifetime_adjust: i64,
    /// `allow-certificate-get`.
    pub allow_certificate_get: bool,
    /// The subscriber's CSR, kept from the finalize for the reissues.
    pub csr: Option<Vec<u8>>,
    /// When the next certificate is due; `None` when none is.
    pub next_issue: Option<i64>,
    /// The nominal start of the reissue in flight.
    pub reissue_start: Option<i64>,
    /// When the order was canceled.
    pub canceled_at: Option<i64>,
}

impl StarRow {
    /// The terms the schedule needs.
    pub fn terms(&self) -> crate::protocol::star::Terms {
        crate::protocol::star::Terms {
            end_date: self.end_date,
            lifetime: self.lifetime,
            lifetime_adjust: self.lifetime_adjust,
        }
    }
}

/// The columns of row type `T` in its field order: a selection valid on
/// both dialects (`T::as_select()` names one backend), read back through
/// `T`'s `Queryable`, whose fields are in the same order.
pub fn columns<T: Selectable<diesel::sqlite::Sqlite>>() -> T::SelectExpression {
    T::construct_selection()
}
