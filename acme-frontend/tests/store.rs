//! In-process tests of the store's transitions, each run twice: against a
//! real SQLite file in a temporary directory and against a real PostgreSQL
//! server (`test_kit::postgres`), with no spawned binaries of ours: the validation cascade
//! (challenge → authorization → every order that shares it), expiry as
//! clients see it, one certificate for a finalize raced by many tasks, and
//! in-flight claims released when a job fails or panics.

use std::sync::Arc;

use acme_frontend::error::Error;
use acme_frontend::handlers::new_order::new_authz;
use acme_frontend::jobs::InFlight;
use acme_frontend::protocol::{
    AccountStatus, AuthzStatus, CertificateStatus, ChallengeStatus, OrderStatus,
};
use acme_frontend::store::authzs::Outcome;
use acme_frontend::store::models::{AccountRow, AuthzRow, CertRow, ChallengeRow, OrderRow};
use acme_frontend::store::orders::NewOrder;
use acme_frontend::store::pg::PgOptions;
use acme_frontend::store::{self, Store};
use shared_proto::Identifier;
use test_kit::postgres::PgServer;

const T0: i64 = 1_800_000_000;
const LIFETIME: i64 = 3600;

/// A store and what keeps its database alive (dropped after the store).
struct Db {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgServer>,
}

fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("akamu.db")).expect("open the database");
    Db {
        store,
        _dir: Some(dir),
        _pg: None,
    }
}

fn pg_db() -> Db {
    let server = PgServer::start().expect("start PostgreSQL (install the `postgresql` package)");
    let store = Store::open_postgres(PgOptions {
        url: server.url(),
        max_connections: 8,
        timeout: std::time::Duration::from_secs(10),
    })
    .expect("open the database");
    Db {
        store,
        _dir: None,
        _pg: Some(server),
    }
}

/// Runs each named `async fn(Db)` on SQLite (`sqlite::name`) and on
/// PostgreSQL (`postgres::name`).
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::sqlite_db()).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::pg_db()).await
                }
            )+
        }
    };
}

on_both_backends!(
    the_cascade_makes_an_order_ready_only_when_every_authorization_is_valid,
    an_invalid_authorization_fails_every_pending_order_that_shares_it,
    orders_and_authorizations_expire_as_clients_see_them,
    a_finalize_raced_by_many_tasks_issues_one_certificate,
    a_failed_issuance_makes_the_order_invalid_once,
    replacement_claims_and_renewal_marks,
    account_key_history_survives_key_changes,
    one_attempt_per_authorization,
);

fn account(id: &str) -> AccountRow {
    AccountRow {
        id: id.into(),
        status: AccountStatus::Valid,
        contact: "[]".into(),
        jwk: "{}".into(),
        jwk_thumbprint: format!("thumbprint-{id}"),
        tos_agreed: true,
        created: T0,
        updated: T0,
    }
}

/// A pending order of `account` over `authzs`, expiring at `expires`.
fn order(id: &str, account: &str, authzs: &[&AuthzRow], expires: i64) -> OrderRow {
    let statuses: Vec<AuthzStatus> = authzs.iter().map(|a| a.status).collect();
    OrderRow {
        id: id.into(),
        account_id: account.into(),
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

/// Stores `order` with fresh authorizations (and their challenges) for
/// `names`, returning the authorizations.
async fn insert_order(db: &Db, id: &str, account: &str, names: &[&str]) -> Vec<AuthzRow> {
    let mut authzs = Vec::new();
    let mut challenges: Vec<ChallengeRow> = Vec::new();
    for name in names {
        let (a, c) = new_authz(
            &Identifier::dns(name),
            account,
            T0,
            LIFETIME,
            false,
            Default::default(),
        );
        authzs.push(a);
        challenges.extend(c);
    }
    let row = order(
        id,
        account,
        &authzs.iter().collect::<Vec<_>>(),
        T0 + LIFETIME,
    );
    let new = NewOrder {
        order: row,
        authz_ids: authzs.iter().map(|a| a.id.clone()).collect(),
        new_authzs: authzs.clone(),
        challenges,
    };
    db.store
        .run(move |c| store::orders::insert(c, new))
        .await
        .expect("insert order");
    authzs
}

/// An order that reuses `authzs` (already stored).
async fn insert_order_reusing(db: &Db, id: &str, account: &str, authzs: &[AuthzRow]) {
    let row = order(
        id,
        account,
        &authzs.iter().collect::<Vec<_>>(),
        T0 + LIFETIME,
    );
    let new = NewOrder {
        order: row,
        authz_ids: authzs.iter().map(|a| a.id.clone()).collect(),
        new_authzs: Vec::new(),
        challenges: Vec::new(),
    };
    db.store
        .run(move |c| store::orders::insert(c, new))
        .await
        .expect("insert order");
}

async fn add_account(db: &Db, id: &str) {
    let row = account(id);
    db.store
        .run(move |c| store::accounts::insert_or_existing(c, row).map(|_| ()))
        .await
        .expect("insert account");
}

/// Answers the http-01 challenge of `authz` and records `outcome`.
async fn validate(db: &Db, authz: &AuthzRow, outcome: Outcome) {
    let (aid, cid) = (authz.id.clone(), format!("{}/http-01", authz.id));
    let started = db
        .store
        .run(move |c| store::authzs::start_challenge(c, &aid, &cid, None, T0 + 1))
        .await
        .expect("start challenge")
        .expect("challenge exists");
    assert!(started.dispatch, "a pending challenge starts a probe");
    assert_eq!(started.challenge.status, ChallengeStatus::Processing);
    let cid = started.challenge.id.clone();
    db.store
        .run(move |c| store::authzs::record_validation(c, &cid, outcome, T0 + 2))
        .await
        .expect("record validation");
}

async fn stored_order(db: &Db, id: &str) -> (OrderRow, Vec<AuthzRow>) {
    let id = id.to_owned();
    db.store
        .read(move |c| store::orders::with_authzs(c, &id))
        .await
        .expect("read order")
        .expect("order exists")
}

fn valid() -> Outcome {
    Outcome::Valid("{}".into(), None, None)
}

fn invalid() -> Outcome {
    Outcome::Invalid(r#"{"type":"urn:ietf:params:acme:error:incorrectResponse"}"#.into())
}

async fn the_cascade_makes_an_order_ready_only_when_every_authorization_is_valid(db: Db) {
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example", "b.example"]).await;

    validate(&db, &authzs[0], valid()).await;
    let (o, a) = stored_order(&db, "o1").await;
    assert_eq!(o.status, OrderStatus::Pending, "one of two authorizations");
    assert_eq!(a[0].status, AuthzStatus::Valid);
    assert_eq!(a[1].status, AuthzStatus::Pending);

    validate(&db, &authzs[1], valid()).await;
    let (o, a) = stored_order(&db, "o1").await;
    assert_eq!(o.status, OrderStatus::Ready);
    assert_eq!(o.status_at(&a, T0 + 3), OrderStatus::Ready);
    // A challenge already decided is not started again.
    let (aid, cid) = (authzs[0].id.clone(), format!("{}/http-01", authzs[0].id));
    let again = db
        .store
        .run(move |c| store::authzs::start_challenge(c, &aid, &cid, None, T0 + 3))
        .await
        .expect("start challenge")
        .expect("exists");
    assert!(!again.dispatch);
    assert_eq!(again.challenge.status, ChallengeStatus::Valid);
}

async fn an_invalid_authorization_fails_every_pending_order_that_shares_it(db: Db) {
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example", "b.example"]).await;
    insert_order_reusing(&db, "o2", "acct", &authzs[1..]).await;

    validate(&db, &authzs[1], invalid()).await;
    for id in ["o1", "o2"] {
        let (o, a) = stored_order(&db, id).await;
        assert_eq!(o.status, OrderStatus::Invalid, "{id}");
        assert!(
            o.error
                .as_deref()
                .is_some_and(|e| e.contains("incorrectResponse"))
        );
        assert_eq!(a.last().map(|a| a.status), Some(AuthzStatus::Invalid));
    }
    // A result arriving for a challenge that is no longer processing (a
    // second probe, a restart) changes nothing.
    let cid = format!("{}/http-01", authzs[1].id);
    let recorded = db
        .store
        .run(move |c| store::authzs::record_validation(c, &cid, valid(), T0 + 9))
        .await
        .expect("late result");
    assert!(!recorded, "a late result is not recorded");
    let (o, _) = stored_order(&db, "o2").await;
    assert_eq!(o.status, OrderStatus::Invalid);
}

async fn orders_and_authorizations_expire_as_clients_see_them(db: Db) {
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example"]).await;
    validate(&db, &authzs[0], valid()).await;
    let (o, a) = stored_order(&db, "o1").await;
    let expiry = T0 + LIFETIME;
    assert_eq!(o.status_at(&a, expiry - 1), OrderStatus::Ready);
    assert_eq!(a[0].status_at(expiry - 1), AuthzStatus::Valid);
    assert_eq!(a[0].status_at(expiry), AuthzStatus::Expired);
    assert_eq!(o.status_at(&a, expiry), OrderStatus::Invalid);
    // Reuse looks only at authorizations valid past the given instant.
    let id = Identifier::dns("a.example");
    let (i1, i2) = (id.clone(), id);
    let reusable = db
        .store
        .read(move |c| {
            Ok((
                store::authzs::reusable(c, "acct", &i1, expiry - 1)?.is_some(),
                store::authzs::reusable(c, "acct", &i2, expiry)?.is_some(),
            ))
        })
        .await
        .expect("read");
    assert_eq!(reusable, (true, false));
}

fn certificate(id: &str, order_id: &str, serial: &str) -> CertRow {
    CertRow {
        id: id.into(),
        order_id: order_id.into(),
        account_id: "acct".into(),
        serial_number: serial.into(),
        status: CertificateStatus::Valid,
        der: vec![0x30, 0x00],
        pem: String::new(),
        not_before: T0,
        not_after: T0 + 90 * 86400,
        revoked_at: None,
        revocation_reason: None,
        created: T0,
        mtc_log_index: None,
    }
}

async fn a_finalize_raced_by_many_tasks_issues_one_certificate(db: Db) {
    let db = Arc::new(db);
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example"]).await;
    validate(&db, &authzs[0], valid()).await;

    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move {
            let began = db
                .store
                .run(move |c| store::orders::begin_processing(c, "o1", &[i], T0 + 5))
                .await
                .expect("begin processing");
            if !began {
                return false;
            }
            let cert = certificate(&format!("c{i}"), "o1", &format!("{i:x}"));
            db.store
                .run_durable(move |c| store::orders::complete_issuance(c, cert, T0 + 6))
                .await
                .expect("the winner completes");
            true
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.expect("join"));
    }
    assert_eq!(winners, 1, "exactly one finalize moves ready → processing");
    // A second completion of the same order is refused and stores nothing.
    let late = certificate("late", "o1", "ffff");
    let refused = db
        .store
        .run_durable(move |c| store::orders::complete_issuance(c, late, T0 + 7))
        .await;
    assert!(matches!(refused, Err(Error::Internal(_))), "{refused:?}");
    let (o, _) = stored_order(&db, "o1").await;
    assert_eq!(o.status, OrderStatus::Valid);
    let serials = db
        .store
        .read(store::certificates::all_serials)
        .await
        .expect("serials");
    assert_eq!(serials.len(), 1, "{serials:?}");
}

async fn a_failed_issuance_makes_the_order_invalid_once(db: Db) {
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example"]).await;
    validate(&db, &authzs[0], valid()).await;
    assert!(
        db.store
            .run(|c| store::orders::begin_processing(c, "o1", b"csr", T0 + 5))
            .await
            .expect("begin")
    );
    let listed = db
        .store
        .read(store::orders::processing)
        .await
        .expect("read");
    assert_eq!(listed.len(), 1, "the sweep sees the processing order");
    db.store
        .run(|c| store::orders::fail_processing(c, "o1", r#"{"type":"x"}"#, T0 + 6))
        .await
        .expect("fail");
    let (o, _) = stored_order(&db, "o1").await;
    assert_eq!(o.status, OrderStatus::Invalid);
    assert_eq!(o.csr, None, "the CSR is dropped with the attempt");
    assert!(
        db.store
            .read(store::orders::processing)
            .await
            .expect("read")
            .is_empty()
    );
}

#[tokio::test]
async fn in_flight_claims_are_released_when_a_job_fails_or_panics() {
    let set = Arc::new(InFlight::default());
    let claim = set.claim("order-1").expect("first claim");
    assert!(set.claim("order-1").is_none(), "one job per key");
    drop(claim);
    assert!(set.claim("order-1").is_some(), "released on drop");

    // A job that panics while holding its claim releases it as its future
    // is dropped.
    let claim = set.claim("challenge-1").expect("claim");
    let job = tokio::spawn(async move {
        let _claim = claim;
        tokio::task::yield_now().await;
        panic!("job panics on purpose");
    });
    assert!(job.await.is_err_and(|e| e.is_panic()));
    assert!(!set.contains("challenge-1"), "the panic released the claim");
    assert!(set.claim("challenge-1").is_some());
}

/// RFC 9773 state: a certificate is claimed by one replacing order at a
/// time, a failed replacement releases its claim, and early-renewal marks
/// select by serial or by issuance time (unexpired only).
async fn replacement_claims_and_renewal_marks(db: Db) {
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example"]).await;
    validate(&db, &authzs[0], valid()).await;
    db.store
        .run(|c| store::orders::begin_processing(c, "o1", &[1], T0 + 5))
        .await
        .expect("begin");
    let mut old = certificate("c-old", "o1", "0a");
    old.created = T0 + 6;
    db.store
        .run_durable(move |c| store::orders::complete_issuance(c, old, T0 + 6))
        .await
        .expect("issue");

    let claims = db
        .store
        .run(|c| {
            Ok((
                store::renewals::claim(c, "c-old", "o2", T0 + 10)?,
                store::renewals::claim(c, "c-old", "o2", T0 + 11)?,
                store::renewals::claim(c, "c-old", "o3", T0 + 12)?,
                store::renewals::replaced_by(c, "c-old")?,
            ))
        })
        .await
        .expect("claims");
    assert_eq!(claims, (true, true, false, Some("o2".to_owned())));
    let after_release = db
        .store
        .run(|c| {
            store::renewals::release(c, "o2")?;
            Ok((
                store::renewals::replaced_by(c, "c-old")?,
                store::renewals::claim(c, "c-old", "o3", T0 + 13)?,
            ))
        })
        .await
        .expect("release");
    assert_eq!(
        after_release,
        (None, true),
        "o3 may replace it once o2 failed"
    );

    let marks = db
        .store
        .run(|c| {
            let before = store::renewals::unexpired_issued_before(c, T0 + 7, T0 + 8)?;
            let none = store::renewals::unexpired_issued_before(c, T0 + 6, T0 + 8)?;
            let expired = store::renewals::unexpired_issued_before(c, T0 + 7, T0 + 91 * 86400)?;
            let n = store::renewals::mark_early(c, &before, Some("https://x.example/i"), T0 + 9)?;
            let again = store::renewals::mark_early(c, &before, None, T0 + 10)?;
            Ok((
                before,
                none,
                expired,
                n,
                again,
                store::renewals::mark(c, "c-old")?,
            ))
        })
        .await
        .expect("marks");
    assert_eq!(marks.0, ["c-old"]);
    assert!(marks.1.is_empty(), "issued at T0+6, not before it");
    assert!(marks.2.is_empty(), "expired certificates are not marked");
    assert_eq!((marks.3, marks.4), (1, 1));
    assert_eq!(marks.5, Some((T0 + 10, None)), "the latest mark wins");
}

/// Every key an account has used is kept: the first at creation, each
/// key-change retires the old one and adds the new (a key that comes back
/// is current again); a stale or conflicting key-change adds nothing.
async fn account_key_history_survives_key_changes(db: Db) {
    use store::accounts::{HistoricKey, KeySwap, key_history, swap_key};
    add_account(&db, "a").await;
    add_account(&db, "b").await;
    let history = |id: &'static str| {
        let store = db.store.clone();
        async move {
            store
                .read(move |c| key_history(c, id))
                .await
                .expect("history")
        }
    };
    assert_eq!(
        history("a").await,
        [HistoricKey {
            thumbprint: "thumbprint-a".into(),
            added: T0,
            retired: None,
        }]
    );
    let swap = |old: &'static str, new: &'static str, at: i64| {
        let store = db.store.clone();
        async move {
            store
                .run(move |c| swap_key(c, "a", old, "{}", new, at))
                .await
                .expect("swap")
        }
    };
    assert!(matches!(
        swap("thumbprint-a", "k2", T0 + 10).await,
        KeySwap::Done(_)
    ));
    assert!(matches!(
        swap("thumbprint-a", "k3", T0 + 20).await,
        KeySwap::Stale
    ));
    assert!(matches!(
        swap("k2", "thumbprint-b", T0 + 30).await,
        KeySwap::KeyInUse(_)
    ));
    assert!(matches!(
        swap("k2", "thumbprint-a", T0 + 40).await,
        KeySwap::Done(_)
    ));
    assert_eq!(
        history("a").await,
        [
            HistoricKey {
                thumbprint: "k2".into(),
                added: T0 + 10,
                retired: Some(T0 + 40),
            },
            HistoricKey {
                thumbprint: "thumbprint-a".into(),
                added: T0 + 40,
                retired: None,
            },
        ]
    );
    assert_eq!(history("b").await.len(), 1);
}

/// One attempt per authorization: once one challenge is `processing`, a
/// POST to it or to a sibling starts nothing, and the database itself (a
/// unique partial index) refuses a second `processing` challenge.
async fn one_attempt_per_authorization(db: Db) {
    add_account(&db, "acct").await;
    let authzs = insert_order(&db, "o1", "acct", &["a.example"]).await;
    let start = |kind: &str| {
        let (aid, cid) = (authzs[0].id.clone(), format!("{}/{kind}", authzs[0].id));
        let store = db.store.clone();
        async move {
            store
                .run(move |c| store::authzs::start_challenge(c, &aid, &cid, None, T0 + 1))
                .await
                .expect("start challenge")
                .expect("challenge exists")
        }
    };
    let first = start("http-01").await;
    assert!(first.dispatch);
    let again = start("http-01").await;
    assert!(!again.dispatch, "the same challenge is not started twice");
    assert_eq!(again.challenge.status, ChallengeStatus::Processing);
    let sibling = start("dns-01").await;
    assert!(!sibling.dispatch, "a sibling is not started beside it");
    assert_eq!(sibling.challenge.status, ChallengeStatus::Pending);

    // Behind the store's back: the index refuses a second attempt.
    let cid = format!("{}/dns-01", authzs[0].id);
    let refused = db
        .store
        .run(move |c| {
            use acme_frontend::store::Query;
            diesel::sql_query("UPDATE challenges SET status = 'processing' WHERE id = $1")
                .bind::<diesel::sql_types::Text, _>(cid)
                .exec(c)
                .map_err(|e| Error::Internal(e.to_string()))
        })
        .await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("UNIQUE")
            || e.to_string().contains("idx_challenges_one_attempt")),
        "{refused:?}"
    );
}

/// A database that holds a migration this binary does not know (written
/// by a newer version) is refused with a message saying so, and is left
/// as it was.
#[test]
fn a_database_from_a_newer_version_is_refused() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("akamu.db");
    drop(Store::open(&path).expect("create"));
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).expect("connect");
    // The dropped store's writer thread may still be closing its
    // connection: wait for its lock rather than fail.
    conn.batch_execute(
        "PRAGMA busy_timeout = 10000; \
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000060');",
    )
    .expect("add a future migration");
    drop(conn);
    // The last connection to close checkpoints the WAL into the file and
    // removes it: wait for the dropped store's writer to be gone too.
    let wal = dir.path().join("akamu.db-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = std::fs::read(&path).expect("read");
    let err = match Store::open(&path) {
        Ok(_) => panic!("a newer database was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("newer than this binary"), "{err}");
    assert!(err.contains("20991231000060"), "{err}");
    assert!(err.contains("downgrades are not supported"), "{err}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file changed"
    );
}

/// PostgreSQL: the same refusal of a newer schema, with the same words, and
/// a URL's password never in the message.
#[test]
fn a_postgres_database_from_a_newer_version_is_refused() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let server = PgServer::start().expect("start PostgreSQL");
    // The test server trusts loopback: the password is carried, not checked.
    let url = server
        .url()
        .replacen("postgres@", "postgres:hunter2-secret@", 1);
    let options = PgOptions {
        url: url.clone(),
        max_connections: 2,
        timeout: std::time::Duration::from_secs(5),
    };
    drop(Store::open_postgres(options.clone()).expect("create"));
    let mut conn = PgConnection::establish(&url).expect("connect");
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000060');",
    )
    .expect("add a future migration");
    let err = match Store::open_postgres(options.clone()) {
        Ok(_) => panic!("a newer database was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("newer than this binary"), "{err}");
    assert!(err.contains("20991231000060"), "{err}");
    assert!(err.contains("downgrades are not supported"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    // A server that does not answer: refused, without the password.
    let port = test_kit::ports::free_port();
    let gone = PgOptions {
        url: format!("postgres://akamu:hunter3-secret@127.0.0.1:{port}/akamu"),
        ..options
    };
    let err = match Store::open_postgres(gone) {
        Ok(_) => panic!("a server that is not there was opened"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains("hunter3"), "the password leaked: {err}");
    assert!(err.contains("akamu:***@127.0.0.1"), "{err}");
}

/// Two stores (two front ends, each with its own pool) on one PostgreSQL
/// database racing each atomic step, many rounds: exactly one winner every
/// time (docs/src/fleet.md, "PostgreSQL": row locks under READ COMMITTED).
mod postgres_races {
    use super::*;

    const ROUNDS: usize = 12;
    /// Tasks per store in a round.
    const PER_STORE: usize = 3;

    fn pair() -> (Arc<Db>, Store) {
        let db = pg_db();
        let url = db._pg.as_ref().expect("server").url();
        let b = Store::open_postgres(PgOptions {
            url,
            max_connections: 8,
            timeout: std::time::Duration::from_secs(10),
        })
        .expect("open B");
        (Arc::new(db), b)
    }

    /// Runs `job(store, task)` on `PER_STORE` tasks of each store at once;
    /// the results in task order.
    async fn race<R, F, Fut>(a: &Store, b: &Store, job: F) -> Vec<R>
    where
        R: Send + 'static,
        F: Fn(Store, usize) -> Fut,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        let mut tasks = Vec::new();
        for i in 0..PER_STORE * 2 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(job(store, i)));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("join"));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn finalize_of_one_order_at_two_front_ends_issues_one_certificate() {
        let (db, b) = pair();
        add_account(&db, "acct").await;
        for round in 0..ROUNDS {
            let oid = format!("o{round}");
            let authzs = insert_order(&db, &oid, "acct", &["a.example"]).await;
            validate(&db, &authzs[0], valid()).await;
            let wins = race(&db.store, &b, |store, i| {
                let oid = oid.clone();
                async move {
                    let o = oid.clone();
                    let began = store
                        .run(move |c| store::orders::begin_processing(c, &o, &[1], T0 + 5))
                        .await
                        .expect("begin processing");
                    if !began {
                        return false;
                    }
                    let cert = certificate(&format!("{oid}-c{i}"), &oid, &format!("{oid}{i}"));
                    store
                        .run_durable(move |c| store::orders::complete_issuance(c, cert, T0 + 6))
                        .await
                        .expect("the winner completes");
                    true
                }
            })
            .await;
            assert_eq!(wins.iter().filter(|w| **w).count(), 1, "round {round}");
        }
        let serials = b
            .read(store::certificates::all_serials)
            .await
            .expect("serials");
        assert_eq!(serials.len(), ROUNDS, "one certificate per order");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replaces_revocation_and_eab_have_one_winner() {
        let (db, b) = pair();
        add_account(&db, "acct").await;
        let authzs = insert_order(&db, "base", "acct", &["a.example"]).await;
        validate(&db, &authzs[0], valid()).await;
        let (_, authzs) = stored_order(&db, "base").await;
        for round in 0..ROUNDS {
            // A certificate to replace and to revoke.
            let oid = format!("o{round}");
            insert_order_reusing(&db, &oid, "acct", &authzs).await;
            let o = oid.clone();
            db.store
                .run(move |c| store::orders::begin_processing(c, &o, &[1], T0 + 5))
                .await
                .expect("begin");
            let cert_id = format!("cert{round}");
            let cert = certificate(&cert_id, &oid, &format!("aa{round:02x}"));
            db.store
                .run_durable(move |c| store::orders::complete_issuance(c, cert, T0 + 6))
                .await
                .expect("complete");
            // Replacing orders, one per task.
            for i in 0..PER_STORE * 2 {
                insert_order_reusing(&db, &format!("r{round}-{i}"), "acct", &authzs).await;
            }
            let claims = race(&db.store, &b, |store, i| {
                let (cert, order) = (cert_id.clone(), format!("r{round}-{i}"));
                async move {
                    store
                        .run(move |c| store::renewals::claim(c, &cert, &order, T0 + 7))
                        .await
                        .expect("claim")
                }
            })
            .await;
            assert_eq!(
                claims.iter().filter(|w| **w).count(),
                1,
                "replaces, round {round}: {claims:?}"
            );

            let revoked = race(&db.store, &b, |store, _| {
                let cert = cert_id.clone();
                async move {
                    store
                        .run_durable(move |c| store::certificates::revoke(c, &cert, 1, T0 + 8))
                        .await
                        .expect("revoke")
                }
            })
            .await;
            assert_eq!(
                revoked.iter().filter(|w| **w).count(),
                1,
                "revocation, round {round}"
            );

            // One EAB key, a new account (its own key) per task.
            let kid = format!("kid{round}");
            let k = kid.clone();
            db.store
                .run(move |c| store::eab::seed(c, &[(k, vec![7; 32])], T0))
                .await
                .expect("seed");
            let created = race(&db.store, &b, |store, i| {
                let (kid, row) = (kid.clone(), account(&format!("eab{round}-{i}")));
                async move {
                    store
                        .run(move |c| store::eab::create_account_with_key(c, row, &kid))
                        .await
                }
            })
            .await;
            let winners = created
                .iter()
                .filter(|r| matches!(r, Ok((_, true))))
                .count();
            assert_eq!(winners, 1, "EAB, round {round}: {created:?}");
            assert!(
                created
                    .iter()
                    .all(|r| matches!(r, Ok((_, true)) | Err(Error::Unauthorized(_)))),
                "the losers are refused as a client would be: {created:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_key_change_to_one_key_at_two_front_ends_has_one_winner() {
        let (db, b) = pair();
        for round in 0..ROUNDS {
            let ids: Vec<String> = (0..PER_STORE * 2)
                .map(|i| format!("r{round}-{i}"))
                .collect();
            for id in &ids {
                add_account(&db, id).await;
            }
            let new_tp = format!("new-key-{round}");
            let ids = Arc::new(ids);
            let outcomes = race(&db.store, &b, |store, i| {
                let ids = ids.clone();
                let new_tp = new_tp.clone();
                async move {
                    let id = ids[i].clone();
                    let old = account(&id).jwk_thumbprint;
                    store
                        .run(move |c| {
                            store::accounts::swap_key(c, &id, &old, "{}", &new_tp, T0 + 1).map(
                                |swap| match swap {
                                    store::accounts::KeySwap::Done(_) => "done",
                                    store::accounts::KeySwap::KeyInUse(_) => "in use",
                                    store::accounts::KeySwap::Stale => "stale",
                                },
                            )
                        })
                        .await
                }
            })
            .await;
            // Never an error (a 500 to the client): one account gets the
            // key, every other is told it is in use.
            let outcomes: Vec<&str> = outcomes
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("round {round}: {e}")))
                .collect();
            assert_eq!(
                outcomes.iter().filter(|o| **o == "done").count(),
                1,
                "round {round}: {outcomes:?}"
            );
            assert!(
                outcomes.iter().all(|o| *o == "done" || *o == "in use"),
                "round {round}: {outcomes:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_rate_limit_bucket_is_spent_once_per_token() {
        let (db, b) = pair();
        const TOKENS: i64 = 5;
        for round in 0..ROUNDS {
            let key = format!("k{round}");
            // Each task tries to spend twice; the bucket holds TOKENS.
            let spent = race(&db.store, &b, |store, _| {
                let key = key.clone();
                async move {
                    let mut n = 0;
                    for _ in 0..2 {
                        let key = key.clone();
                        let ok = store
                            .run(move |c| {
                                let used = store::rate_limits::tat(c, "test", &key)?.unwrap_or(0);
                                if used >= TOKENS {
                                    return Ok(false);
                                }
                                store::rate_limits::set_tat(c, "test", &key, used + 1)?;
                                Ok(true)
                            })
                            .await
                            .expect("spend");
                        n += i64::from(ok);
                    }
                    n
                }
            })
            .await;
            assert_eq!(
                spent.iter().sum::<i64>(),
                TOKENS,
                "round {round}: {spent:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_attempt_per_authorization_across_front_ends() {
        let (db, b) = pair();
        add_account(&db, "acct").await;
        for round in 0..ROUNDS {
            let authzs = insert_order(&db, &format!("o{round}"), "acct", &["a.example"]).await;
            let aid = authzs[0].id.clone();
            let started = race(&db.store, &b, |store, i| {
                let aid = aid.clone();
                let kind = ["http-01", "dns-01", "tls-alpn-01"][i % 3];
                async move {
                    let cid = format!("{aid}/{kind}");
                    store
                        .run(move |c| store::authzs::start_challenge(c, &aid, &cid, None, T0 + 1))
                        .await
                        .expect("start challenge, never a database error")
                        .map(|s| s.dispatch)
                }
            })
            .await;
            let dispatched = started.iter().filter(|s| **s == Some(true)).count();
            assert_eq!(dispatched, 1, "round {round}: {started:?}");
        }
    }

    /// Reuse of a valid authorization racing its deactivation at another
    /// front end: the reusing order locks it (`FOR SHARE`), so the
    /// deactivation commits only after the order does, never in between
    /// the order's check and its commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn authorization_reuse_holds_off_a_concurrent_deactivation() {
        let (db, b) = pair();
        add_account(&db, "acct").await;
        for round in 0..ROUNDS {
            let name = format!("r{round}.example");
            let authzs = insert_order(&db, &format!("o{round}"), "acct", &[&name]).await;
            validate(&db, &authzs[0], valid()).await;
            let (id, aid) = (Identifier::dns(&name), authzs[0].id.clone());
            let reuse = db.store.run(move |c| {
                let found = store::authzs::reusable(c, "acct", &id, T0 + 10)?;
                // The order's other work, with the authorization in hand.
                std::thread::sleep(std::time::Duration::from_millis(150));
                Ok((found.is_some(), std::time::Instant::now()))
            });
            let deactivate = async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let done = b
                    .run(move |c| store::authzs::deactivate(c, &aid, T0 + 3))
                    .await
                    .expect("deactivate");
                (done, std::time::Instant::now())
            };
            let (reused, deactivated) = tokio::join!(reuse, deactivate);
            let (found, reuse_done) = reused.expect("reuse");
            let (done, deactivate_done) = deactivated;
            assert!(found && done, "round {round}: both succeed in turn");
            assert!(
                deactivate_done >= reuse_done,
                "round {round}: the deactivation committed while the reusing order held the \
                 authorization"
            );
        }
    }
}

/// The PostgreSQL pool: bounded (a checkout waits at most the timeout,
/// then fails with an error saying so), every call under a deadline, and
/// maintained (a connection the server dropped is replaced before a write
/// job runs on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_pool_is_bounded_and_replaces_dropped_connections() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    use std::time::{Duration, Instant};
    let server = PgServer::start().expect("start PostgreSQL");
    let store = Store::open_postgres(PgOptions {
        url: server.url(),
        max_connections: 1,
        timeout: Duration::from_secs(1),
    })
    .expect("open");
    // One job holds the only connection for 2.5 s.
    let holder = store.clone();
    let held = tokio::spawn(async move {
        holder
            .run(|_| {
                std::thread::sleep(Duration::from_millis(2500));
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let waited = store.read(|c| store::eab::unused_key(c, "x")).await;
    assert!(
        matches!(&waited, Err(e) if e.to_string().contains("no database connection free")),
        "{waited:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900)
            && started.elapsed() < Duration::from_secs(2),
        "the checkout deadline: {:?}",
        started.elapsed()
    );
    held.await.expect("join").expect("the holder's job");

    // A lock held elsewhere past the deadline fails the call in about the
    // deadline (`statement_timeout` or `lock_timeout`), it does not hang.
    let mut admin = PgConnection::establish(&server.url()).expect("connect");
    admin
        .batch_execute("BEGIN; LOCK TABLE eab_keys IN ACCESS EXCLUSIVE MODE;")
        .expect("lock");
    let started = Instant::now();
    let blocked = store
        .run(|c| store::eab::seed(c, &[("blocked".into(), vec![1; 32])], T0))
        .await;
    assert!(
        matches!(&blocked, Err(e) if e.to_string().contains("timeout")),
        "{blocked:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    admin.batch_execute("ROLLBACK;").expect("unlock");

    // The server drops every connection of the pool.
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .expect("terminate");
    // A read that meets a dropped connection runs again on a fresh one.
    let found = store
        .read(|c| store::eab::unused_key(c, "blocked"))
        .await
        .expect("a read after the server dropped the pool's connections");
    assert_eq!(found, None, "the timed-out write left nothing");
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .expect("terminate again");
    // A write finds the dropped connection at BEGIN, before its work: it
    // runs on a fresh connection and succeeds.
    store
        .run(|c| store::eab::seed(c, &[("after".into(), vec![1; 32])], T0))
        .await
        .expect("a write after the server dropped the pool's connections");
    let found = store
        .read(|c| store::eab::unused_key(c, "after"))
        .await
        .expect("the pool serves again");
    assert_eq!(found, Some(vec![1; 32]));
}
