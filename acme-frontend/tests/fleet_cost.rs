//! What `[fleet] enabled` costs a request, measured on a real SQLite file
//! (ignored by default; run with
//! `cargo test -p acme-frontend --test fleet_cost -- --ignored --nocapture`):
//! redeeming a nonce in memory and through the database (one caller, and
//! 64 at once, which the writer group-commits), and an account row from
//! the process's cache against a read per request. The same again on a
//! PostgreSQL server started for the test (`postgres_…`: a write job is one
//! transaction there, no group commit). The figures are in
//! `docs/src/fleet.md`.

use std::sync::Arc;
use std::time::Instant;

use acme_frontend::auth::AccountCache;
use acme_frontend::nonces::{NonceBook, Nonces, SharedNonces};
use acme_frontend::protocol::AccountStatus;
use acme_frontend::store::models::AccountRow;
use acme_frontend::store::{self, Store};

const N: u32 = 5_000;
const T0: i64 = 1_800_000_000;

fn per_op(started: Instant, n: u32) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; see the file's header"]
async fn nonce_and_account_costs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("akamu.db")).expect("open");
    measure("SQLite", store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; see the file's header"]
async fn postgres_nonce_and_account_costs() {
    let pg = test_kit::postgres::PgServer::start().expect("start PostgreSQL");
    let store = Store::open_postgres(store::pg::PgOptions {
        url: pg.url(),
        max_connections: 16,
        timeout: std::time::Duration::from_secs(10),
    })
    .expect("open");
    measure("PostgreSQL", store).await;
}

async fn measure(backend: &str, store: Store) {
    let memory = Nonces::Memory(NonceBook::default());
    let started = Instant::now();
    for _ in 0..N {
        let n = memory.issue(T0);
        assert!(memory.consume(&store, &n, T0).await.expect("consume"));
    }
    let memory_us = per_op(started, N);

    let key = store
        .run(|c| store::fleet::nonce_key(c, &[7u8; 32]))
        .await
        .expect("key");
    let shared = Arc::new(Nonces::Database(SharedNonces::new(key)));
    let started = Instant::now();
    for _ in 0..N {
        let n = shared.issue(T0);
        assert!(shared.consume(&store, &n, T0).await.expect("consume"));
    }
    let database_us = per_op(started, N);

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (shared, store) = (shared.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..N / 64 {
                let n = shared.issue(T0);
                assert!(shared.consume(&store, &n, T0).await.expect("consume"));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let concurrent_us = per_op(started, (N / 64) * 64);

    let row = AccountRow {
        id: "acct".into(),
        status: AccountStatus::Valid,
        contact: "[]".into(),
        jwk: "{}".into(),
        jwk_thumbprint: "tp".into(),
        tos_agreed: true,
        created: T0,
        updated: T0,
    };
    let inserted = row.clone();
    store
        .run(move |c| store::accounts::insert_or_existing(c, inserted).map(|_| ()))
        .await
        .expect("account");
    let cache = AccountCache::default();
    cache.insert(cache.generation(), &row);
    let started = Instant::now();
    for _ in 0..N {
        assert!(cache.get("acct").is_some());
    }
    let cached_us = per_op(started, N);
    let started = Instant::now();
    for _ in 0..N {
        let found = store
            .read(|c| store::accounts::by_id(c, "acct"))
            .await
            .expect("read");
        assert!(found.is_some());
    }
    let read_us = per_op(started, N);

    println!(
        "{backend}: nonce redemption, memory: {memory_us:.1} µs; database, one caller: {database_us:.1} µs; \
         database, 64 callers: {concurrent_us:.1} µs per redemption (throughput)\n\
         account row, cache: {cached_us:.2} µs; database read: {read_us:.1} µs"
    );
}
