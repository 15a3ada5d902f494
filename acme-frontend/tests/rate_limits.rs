//! Rate-limit state in a real SQLite file (no spawned binaries): two
//! stores opened on one database file, as two front ends on one database,
//! share every bucket; a job that fails after its spend takes the spend
//! back; pauses and unpauses (the pending counts' query plans are checked
//! in `store::rate_limits`). Each also runs on a PostgreSQL server
//! (`postgres_*`).

use std::net::IpAddr;

use acme_frontend::config::{BucketLimit, RateLimits};
use acme_frontend::error::Error;
use acme_frontend::protocol::AccountStatus;
use acme_frontend::rate_limits::{self, NewOrder, Policy};
use acme_frontend::store::models::AccountRow;
use acme_frontend::store::{self, Store};
use shared_proto::Identifier;

const NOW_MS: i64 = 1_800_000_000_000;

/// Two stores on one database, and what keeps it alive.
struct Two {
    a: Store,
    b: Store,
    _dir: tempfile::TempDir,
    _pg: Option<test_kit::postgres::PgServer>,
}

fn two(postgres: bool) -> Two {
    let dir = tempfile::tempdir().expect("tempdir");
    if postgres {
        let pg = test_kit::postgres::PgServer::start().expect("start PostgreSQL");
        let options = store::pg::PgOptions {
            url: pg.url(),
            max_connections: 4,
            timeout: std::time::Duration::from_secs(10),
        };
        Two {
            a: Store::open_postgres(options.clone()).expect("first front end"),
            b: Store::open_postgres(options).expect("second front end"),
            _dir: dir,
            _pg: Some(pg),
        }
    } else {
        let path = dir.path().join("akamu.db");
        Two {
            a: Store::open(&path).expect("first front end"),
            b: Store::open(&path).expect("second front end"),
            _dir: dir,
            _pg: None,
        }
    }
}

fn account(id: &str) -> AccountRow {
    AccountRow {
        id: id.into(),
        status: AccountStatus::Valid,
        contact: "[]".into(),
        jwk: "{}".into(),
        jwk_thumbprint: format!("thumbprint-{id}"),
        tos_agreed: true,
        created: NOW_MS / 1000,
        updated: NOW_MS / 1000,
    }
}

fn bucket(count: u64, period_secs: u64, burst: u64) -> Option<BucketLimit> {
    Some(BucketLimit {
        count,
        period_secs,
        burst,
    })
}

fn limited(r: &Result<(), Error>, limit: &str) -> bool {
    matches!(r, Err(Error::RateLimited { limit: l, .. }) if *l == limit)
}

async fn admit_order(
    store: &Store,
    policy: &Policy,
    account: &str,
    name: &str,
    t: i64,
) -> Result<(), Error> {
    let (policy, account, ids) = (
        policy.clone(),
        account.to_owned(),
        vec![Identifier::dns(name)],
    );
    store
        .run(move |c| {
            let order = NewOrder {
                account_id: &account,
                identifiers: &ids,
                new_authzs: 1,
                renewal_exempt: false,
            };
            rate_limits::admit_new_order(c, &policy, &order, t)
        })
        .await
}

#[tokio::test]
async fn two_stores_on_one_database_share_the_buckets() {
    share_the_buckets(two(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_stores_on_one_database_share_the_buckets() {
    share_the_buckets(two(true)).await;
}

async fn share_the_buckets(two: Two) {
    let (a, b) = (two.a.clone(), two.b.clone());
    let policy = Policy::from_config(&RateLimits {
        new_orders_per_account: bucket(1, 2, 2),
        new_accounts_per_ip: bucket(1, 60, 1),
        ..RateLimits::default()
    })
    .expect("policy");
    // Burst 2: one order through each front end, then both refuse.
    assert!(
        admit_order(&a, &policy, "acct", "x.example.org", NOW_MS)
            .await
            .is_ok()
    );
    assert!(
        admit_order(&b, &policy, "acct", "x.example.org", NOW_MS)
            .await
            .is_ok()
    );
    for s in [&a, &b] {
        let r = admit_order(s, &policy, "acct", "x.example.org", NOW_MS + 10).await;
        assert!(limited(&r, "new_orders_per_account"), "{r:?}");
    }
    // A token comes back every 2 s, seen by both.
    assert!(
        admit_order(&b, &policy, "acct", "x.example.org", NOW_MS + 2_000)
            .await
            .is_ok()
    );
    let r = admit_order(&a, &policy, "acct", "x.example.org", NOW_MS + 2_000).await;
    assert!(limited(&r, "new_orders_per_account"), "{r:?}");

    // New accounts per IP, across the two.
    let ip: IpAddr = "2001:db8:1::5".parse().expect("ip");
    let p = policy.clone();
    a.run(move |c| rate_limits::admit_new_account(c, &p, ip, NOW_MS))
        .await
        .expect("first account from the address");
    let p = policy.clone();
    let r = b
        .run(move |c| rate_limits::admit_new_account(c, &p, ip, NOW_MS + 1))
        .await;
    assert!(limited(&r, "new_accounts_per_ip"), "{r:?}");
}

#[tokio::test]
async fn a_job_that_fails_after_its_spend_spends_nothing() {
    failed_job_spends_nothing(two(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_job_that_fails_after_its_spend_spends_nothing() {
    failed_job_spends_nothing(two(true)).await;
}

async fn failed_job_spends_nothing(two: Two) {
    let store = two.a.clone();
    let policy = Policy::from_config(&RateLimits {
        new_orders_per_account: bucket(1, 3600, 1),
        ..RateLimits::default()
    })
    .expect("policy");
    for _ in 0..3 {
        let p = policy.clone();
        let r: Result<(), Error> = store
            .run(move |c| {
                let ids = [Identifier::dns("x.example.org")];
                let order = NewOrder {
                    account_id: "acct",
                    identifiers: &ids,
                    new_authzs: 1,
                    renewal_exempt: false,
                };
                rate_limits::admit_new_order(c, &p, &order, NOW_MS)?;
                // The order's insert fails after the spend.
                Err(Error::Malformed("refused after the spend".into()))
            })
            .await;
        assert!(matches!(r, Err(Error::Malformed(_))), "{r:?}");
    }
    let tat = store
        .read(|c| store::rate_limits::tat(c, "new_orders_per_account", "acct"))
        .await
        .expect("read");
    assert_eq!(tat, None, "the bucket is still full");
    assert!(
        admit_order(&store, &policy, "acct", "x.example.org", NOW_MS)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn failures_pause_and_unpause_lifts_and_refills() {
    pause_and_unpause(two(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failures_pause_and_unpause_lifts_and_refills() {
    pause_and_unpause(two(true)).await;
}

async fn pause_and_unpause(two: Two) {
    let store = two.a.clone();
    store
        .run(|c| {
            store::accounts::insert_or_existing(c, account("acct"))?;
            Ok(())
        })
        .await
        .expect("account");
    let policy = Policy::from_config(&RateLimits {
        failed_validations_per_account_identifier: bucket(1, 3600, 2),
        ..RateLimits::default()
    })
    .expect("policy");
    let fail = |valid: bool, t: i64| {
        let p = policy.clone();
        let store = store.clone();
        async move {
            store
                .run(move |c| {
                    let id = Identifier::dns("*.zombie.example.org");
                    rate_limits::after_validation(c, &p, "acct", &id, valid, t)
                })
                .await
                .expect("recorded")
        }
    };
    // Two failures fit the burst; a success in between refills it.
    assert!(!fail(false, NOW_MS).await);
    assert!(!fail(true, NOW_MS + 1).await);
    assert!(!fail(false, NOW_MS + 2).await);
    assert!(!fail(false, NOW_MS + 3).await);
    assert!(
        fail(false, NOW_MS + 4).await,
        "the third failure in a row pauses"
    );
    assert!(!fail(false, NOW_MS + 5).await, "already paused");
    let r = admit_order(&store, &policy, "acct", "zombie.example.org", NOW_MS + 6).await;
    assert!(
        matches!(
            &r,
            Err(Error::RateLimited {
                limit: "failed_validations_per_account_identifier",
                retry_after_secs: None,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(
        admit_order(&store, &policy, "acct", "other.example.org", NOW_MS + 6)
            .await
            .is_ok()
    );
    let lifted = store
        .run(|c| rate_limits::unpause(c, "acct", None))
        .await
        .expect("unpause");
    assert_eq!(lifted.identifiers, ["dns:zombie.example.org"]);
    assert!(
        admit_order(&store, &policy, "acct", "zombie.example.org", NOW_MS + 7)
            .await
            .is_ok()
    );
    // The bucket was refilled: the next failure does not pause at once.
    assert!(!fail(false, NOW_MS + 8).await);
}
