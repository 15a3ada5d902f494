//! In-process tests of the retention clean-up against a real SQLite file:
//! what expired before the retention cut-off is deleted in batches, and
//! what must stay (certificates, their orders and authorizations, an
//! authorization shared with a kept order, a processing order, anything
//! recent) stays, with every foreign key intact.

use std::time::Duration;

use acme_frontend::handlers::new_order::new_authz;
use acme_frontend::jobs::retention::{cutoff, prune};
use acme_frontend::protocol::{AccountStatus, AuthzStatus, CertificateStatus};
use acme_frontend::store::authzs::Outcome;
use acme_frontend::store::models::{AccountRow, AuthzRow, CertRow, ChallengeRow, OrderRow};
use acme_frontend::store::orders::NewOrder;
use acme_frontend::store::retention::{Pruned, prune_batch};
use acme_frontend::store::{self, Store};
use shared_proto::Identifier;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
/// Lifetime of the old orders and authorizations.
const LIFETIME: i64 = 3600;
/// "Now" for the clean-up: 40 days after T0, so with 30 days of retention
/// everything that expired in the first 10 days is due.
const NOW: i64 = T0 + 40 * DAY;

struct Db {
    store: Store,
    _dir: tempfile::TempDir,
    _pg: Option<test_kit::postgres::PgServer>,
}

/// A database with one account: a SQLite file, or with `postgres` a
/// PostgreSQL server of its own.
async fn db(postgres: bool) -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, pg) = if postgres {
        let pg = test_kit::postgres::PgServer::start().expect("start PostgreSQL");
        let store = Store::open_postgres(store::pg::PgOptions {
            url: pg.url(),
            max_connections: 4,
            timeout: Duration::from_secs(10),
        })
        .expect("open the database");
        (store, Some(pg))
    } else {
        let store = Store::open(&dir.path().join("akamu.db")).expect("open the database");
        (store, None)
    };
    let account = AccountRow {
        id: "acct".into(),
        status: AccountStatus::Valid,
        contact: "[]".into(),
        jwk: "{}".into(),
        jwk_thumbprint: "thumbprint".into(),
        tos_agreed: true,
        created: T0,
        updated: T0,
    };
    store
        .run(move |c| store::accounts::insert_or_existing(c, account).map(|_| ()))
        .await
        .expect("insert account");
    Db {
        store,
        _dir: dir,
        _pg: pg,
    }
}

fn order_row(id: &str, authzs: &[AuthzRow], expires: i64) -> OrderRow {
    let statuses: Vec<AuthzStatus> = authzs.iter().map(|a| a.status).collect();
    OrderRow {
        id: id.into(),
        account_id: "acct".into(),
        status: acme_frontend::protocol::order::stored_order_status(&statuses),
        expires,
        identifiers: "[]".into(),
        not_before: None,
        not_after: None,
        error: None,
        csr: None,
        certificate_id: None,
        created: T0,
        updated: T0,
        profile: None,
        replaces: None,
        replaces_certificate: None,
    }
}

/// Stores order `id`, expiring at `expires`, with a new authorization per
/// name (expiring with the order) and any `reused` ones; returns the new
/// authorizations.
async fn insert_order(
    db: &Db,
    id: &str,
    names: &[&str],
    reused: &[AuthzRow],
    expires: i64,
) -> Vec<AuthzRow> {
    let mut authzs = Vec::new();
    let mut challenges: Vec<ChallengeRow> = Vec::new();
    for name in names {
        let (a, c) = new_authz(
            &Identifier::dns(name),
            "acct",
            T0,
            expires - T0,
            false,
            Default::default(),
        );
        authzs.push(a);
        challenges.extend(c);
    }
    let all: Vec<AuthzRow> = authzs.iter().chain(reused).cloned().collect();
    let new = NewOrder {
        order: order_row(id, &all, expires),
        authz_ids: all.iter().map(|a| a.id.clone()).collect(),
        new_authzs: authzs.clone(),
        challenges,
    };
    db.store
        .run(move |c| store::orders::insert(c, new))
        .await
        .expect("insert order");
    authzs
}

/// Validates `authz` through its http-01 challenge (the cascade makes its
/// orders ready).
async fn validate(db: &Db, authz: &AuthzRow) {
    let (aid, cid) = (authz.id.clone(), format!("{}/http-01", authz.id));
    db.store
        .run(move |c| store::authzs::start_challenge(c, &aid, &cid, None, T0 + 1))
        .await
        .expect("start challenge")
        .expect("challenge exists");
    let cid = format!("{}/http-01", authz.id);
    db.store
        .run(move |c| {
            store::authzs::record_validation(
                c,
                &cid,
                Outcome::Valid("{}".into(), None, None),
                T0 + 2,
            )
        })
        .await
        .expect("record validation");
}

/// Issues a certificate for the ready order `id`.
async fn issue(db: &Db, id: &str, serial: &str) {
    let oid = id.to_owned();
    assert!(
        db.store
            .run(move |c| store::orders::begin_processing(c, &oid, b"csr", T0 + 3))
            .await
            .expect("begin processing"),
        "order {id} is ready"
    );
    let cert = CertRow {
        id: format!("cert-{id}"),
        order_id: id.into(),
        account_id: "acct".into(),
        serial_number: serial.into(),
        status: CertificateStatus::Valid,
        der: vec![0x30, 0x00],
        pem: String::new(),
        not_before: T0,
        not_after: T0 + 90 * DAY,
        revoked_at: None,
        revocation_reason: None,
        created: T0 + 4,
        mtc_log_index: None,
    };
    db.store
        .run_durable(move |c| store::orders::complete_issuance(c, cert, T0 + 4))
        .await
        .expect("complete issuance");
}

async fn order_exists(db: &Db, id: &str) -> bool {
    let id = id.to_owned();
    db.store
        .read(move |c| store::orders::by_id(c, &id))
        .await
        .expect("read order")
        .is_some()
}

/// Whether the authorization exists, and how many challenges it has.
async fn authz_state(db: &Db, authz: &AuthzRow) -> (bool, usize) {
    let id = authz.id.clone();
    db.store
        .read(move |c| {
            Ok((
                store::authzs::by_id(c, &id)?.is_some(),
                store::authzs::challenges_of(c, &id)?.len(),
            ))
        })
        .await
        .expect("read authorization")
}

async fn consistency_problems(db: &Db) -> Vec<String> {
    db.store
        .read(store::maintenance::problems)
        .await
        .expect("check the database")
}

#[tokio::test]
async fn past_retention_goes_and_everything_still_needed_stays() {
    retention_keeps_what_is_needed(db(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_past_retention_goes_and_everything_still_needed_stays() {
    retention_keeps_what_is_needed(db(true).await).await;
}

async fn retention_keeps_what_is_needed(db: Db) {
    let old = T0 + LIFETIME;
    let recent = NOW + DAY;

    // Abandoned long ago: the order, its authorization and challenges go.
    let abandoned = insert_order(&db, "abandoned", &["gone.example"], &[], old).await;
    // A pre-authorization (no order) that expired long ago goes too.
    let (pre, pre_challenges) = new_authz(
        &Identifier::dns("pre.example"),
        "acct",
        T0,
        LIFETIME,
        false,
        Default::default(),
    );
    let pre_row = pre.clone();
    db.store
        .run(move |c| store::authzs::insert(c, pre_row, pre_challenges))
        .await
        .expect("insert pre-authorization");
    // Issued long ago: the certificate stays, and with it its order and the
    // order's authorization and challenges (the validation evidence).
    let issued = insert_order(&db, "issued", &["cert.example"], &[], old).await;
    validate(&db, &issued[0]).await;
    issue(&db, "issued", "c0ffee").await;
    // An old authorization shared by an old order (which goes) and a recent
    // order (which stays): the authorization stays while the recent order
    // links to it.
    let shared = insert_order(&db, "old-sharer", &["shared.example"], &[], old).await;
    validate(&db, &shared[0]).await;
    let fresh = insert_order(&db, "recent-sharer", &["fresh.example"], &shared, recent).await;
    // An old order stuck in processing belongs to the recovery sweep.
    let stuck = insert_order(&db, "stuck", &["stuck.example"], &[], old).await;
    validate(&db, &stuck[0]).await;
    db.store
        .run(|c| store::orders::begin_processing(c, "stuck", b"csr", T0 + 3))
        .await
        .expect("begin processing");
    // Expired, but within retention: it stays.
    let within = insert_order(&db, "within", &["within.example"], &[], NOW - 29 * DAY).await;

    let done = prune(&db.store, cutoff(NOW, 30), 500, Duration::ZERO)
        .await
        .expect("prune");
    assert_eq!(
        done,
        Pruned {
            orders: 2,
            authorizations: 2,
            challenges: 2 * 3,
        },
        "abandoned and old-sharer; gone.example and the pre-authorization"
    );

    assert!(!order_exists(&db, "abandoned").await);
    assert_eq!(authz_state(&db, &abandoned[0]).await, (false, 0));
    assert_eq!(authz_state(&db, &pre).await, (false, 0));
    assert!(!order_exists(&db, "old-sharer").await);

    for kept in ["issued", "recent-sharer", "stuck", "within"] {
        assert!(order_exists(&db, kept).await, "order {kept} is kept");
    }
    for (what, authz) in [
        ("the certificate's authorization", &issued[0]),
        ("the shared authorization", &shared[0]),
        ("the recent order's own authorization", &fresh[0]),
        ("the processing order's authorization", &stuck[0]),
        ("the authorization within retention", &within[0]),
    ] {
        assert_eq!(authz_state(&db, authz).await, (true, 3), "{what} is kept");
    }
    let (order, authzs) = db
        .store
        .read(|c| store::orders::with_authzs(c, "recent-sharer"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(authzs.len(), 2, "the recent order still has both links");
    assert_eq!(order.id, "recent-sharer");

    let cert = db
        .store
        .read(|c| store::certificates::by_serial(c, "c0ffee"))
        .await
        .expect("read certificate")
        .expect("the certificate is kept");
    assert_eq!(cert.order_id, "issued");
    assert!(
        consistency_problems(&db).await.is_empty(),
        "integrity and foreign keys hold"
    );

    // Nothing more is due: a second run deletes nothing.
    let again = prune(&db.store, cutoff(NOW, 30), 500, Duration::ZERO)
        .await
        .expect("prune again");
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn the_clean_up_works_in_batches_of_the_given_size() {
    batches(db(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_clean_up_works_in_batches_of_the_given_size() {
    batches(db(true).await).await;
}

async fn batches(db: Db) {
    for i in 0..5 {
        let name = format!("n{i}.example");
        insert_order(&db, &format!("o{i}"), &[name.as_str()], &[], T0 + LIFETIME).await;
    }
    let due = cutoff(NOW, 30);
    let first = db
        .store
        .run(move |c| prune_batch(c, due, 2))
        .await
        .expect("one batch");
    assert_eq!(
        first,
        Pruned {
            orders: 2,
            authorizations: 2,
            challenges: 6,
        },
        "one batch deletes at most its limit"
    );
    let rest = prune(&db.store, due, 2, Duration::from_millis(1))
        .await
        .expect("prune the rest");
    assert_eq!(
        rest,
        Pruned {
            orders: 3,
            authorizations: 3,
            challenges: 9,
        }
    );
    for i in 0..5 {
        assert!(!order_exists(&db, &format!("o{i}")).await);
    }
    assert!(consistency_problems(&db).await.is_empty());
}
