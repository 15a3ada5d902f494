//! Several front ends on one SQLite file, in process: each [`Store`] has its
//! own writer thread and connections, as each front end process does (SQLite
//! locks connections against each other as it locks processes). Another
//! writer holding the write lock makes a store's batch wait (busy timeout),
//! not fail; a lock held past the timeout fails that batch alone, with an
//! error, and the writer goes on; the same nonce redeemed through two stores
//! at once is accepted once. The nonce and CRL cases also run with two
//! stores on one PostgreSQL database (`postgres_*`).

use std::time::{Duration, Instant};

use acme_frontend::error::Error;
use acme_frontend::nonces::{Nonces, SharedNonces};
use acme_frontend::store::{self, Store};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

fn eab(c: &mut store::Conn, kid: &str) -> Result<(), Error> {
    store::eab::seed(c, &[(kid.to_owned(), vec![7u8; 32])], 1)
}

/// Another process's connection holding the write lock for `hold`.
fn hold_write_lock(path: std::path::PathBuf, hold: Duration) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut other =
            SqliteConnection::establish(&path.display().to_string()).expect("other connection");
        other
            .batch_execute("PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE;")
            .expect("take the write lock");
        tx.send(()).expect("signal");
        std::thread::sleep(hold);
        other.batch_execute("COMMIT;").expect("release");
    });
    rx.recv().expect("the lock is held");
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waits_for_another_writer_and_fails_alone_past_the_busy_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("akamu.db");
    let store = Store::open(&path).expect("open");

    // Held for 1 s: the job waits and commits after the release.
    let holder = hold_write_lock(path.clone(), Duration::from_secs(1));
    let started = Instant::now();
    store
        .run(|c| eab(c, "after-a-short-lock"))
        .await
        .expect("the job waits for the lock");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the job could not commit while the lock was held ({:?})",
        started.elapsed()
    );
    holder.join().expect("holder");

    // Held for 6 s, past the 5 s busy timeout: that batch fails with a
    // database error, and the next one commits.
    let holder = hold_write_lock(path.clone(), Duration::from_secs(6));
    let failed = store.run(|c| eab(c, "during-a-long-lock")).await;
    assert!(
        matches!(failed, Err(Error::Database(_))),
        "a lock held past the busy timeout fails the batch: {failed:?}"
    );
    holder.join().expect("holder");
    store
        .run(|c| eab(c, "after-the-long-lock"))
        .await
        .expect("the writer goes on");
    let found = store
        .read(|c| {
            Ok((
                store::eab::unused_key(c, "during-a-long-lock")?,
                store::eab::unused_key(c, "after-the-long-lock")?,
            ))
        })
        .await
        .expect("read");
    assert_eq!(found, (None, Some(vec![7u8; 32])));
}

/// Two stores (two front ends) on one database, and what keeps it alive.
struct Two {
    a: Store,
    b: Store,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<test_kit::postgres::PgServer>,
}

fn two_sqlite() -> Two {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("akamu.db");
    Two {
        a: Store::open(&path).expect("open A"),
        b: Store::open(&path).expect("open B"),
        _dir: Some(dir),
        _pg: None,
    }
}

fn two_pg() -> Two {
    let server = test_kit::postgres::PgServer::start().expect("start PostgreSQL");
    let options = store::pg::PgOptions {
        url: server.url(),
        max_connections: 8,
        timeout: Duration::from_secs(10),
    };
    Two {
        a: Store::open_postgres(options.clone()).expect("open A"),
        b: Store::open_postgres(options).expect("open B"),
        _dir: None,
        _pg: Some(server),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nonce_redeemed_at_two_front_ends_at_once_is_accepted_once() {
    nonce_race(two_sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_nonce_redeemed_at_two_front_ends_at_once_is_accepted_once() {
    nonce_race(two_pg()).await;
}

async fn nonce_race(two: Two) {
    let (a, b) = (two.a.clone(), two.b.clone());
    let key = a
        .run(|c| store::fleet::nonce_key(c, &[3u8; 32]))
        .await
        .expect("key");
    let nonces = std::sync::Arc::new(Nonces::Database(SharedNonces::new(key)));
    for round in 0..50 {
        let n = nonces.issue(1_000);
        let (na, nb) = (nonces.clone(), nonces.clone());
        let (sa, sb) = (a.clone(), b.clone());
        let (n1, n2) = (n.clone(), n.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { na.consume(&sa, &n1, 1_001).await }),
            tokio::spawn(async move { nb.consume(&sb, &n2, 1_001).await }),
        );
        let ra = ra.expect("join").expect("redeem at A");
        let rb = rb.expect("join").expect("redeem at B");
        assert!(ra ^ rb, "round {round}: accepted at A {ra}, at B {rb}");
    }
}

#[tokio::test]
async fn a_late_crl_never_replaces_a_newer_one_unless_told_to() {
    late_crl(two_sqlite()).await;
}

#[tokio::test]
async fn postgres_a_late_crl_never_replaces_a_newer_one_unless_told_to() {
    late_crl(two_pg()).await;
}

async fn late_crl(two: Two) {
    use acme_frontend::store::fleet::{CrlRow, current_crl, store_crl};
    let store = two.a.clone();
    let crl = |number: i64| CrlRow {
        der: vec![u8::try_from(number).expect("small"); 4],
        number,
        this_update: 100 + number,
        next_update: 1_000,
        mark: (number, 7),
    };
    let put = |row: CrlRow, replace: bool| {
        let store = store.clone();
        async move {
            store
                .run(move |c| store_crl(c, &row, replace))
                .await
                .expect("store")
        }
    };
    assert!(put(crl(5), false).await, "the first CRL");
    assert!(!put(crl(4), false).await, "an older number is refused");
    assert!(!put(crl(5), false).await, "the same number too");
    assert_eq!(store.read(current_crl).await.expect("read"), Some(crl(5)));
    assert!(put(crl(6), false).await, "a newer one replaces it");
    assert!(
        put(crl(1), true).await,
        "a restarted front end's first CRL replaces it whatever its number"
    );
    assert_eq!(store.read(current_crl).await.expect("read"), Some(crl(1)));
}
