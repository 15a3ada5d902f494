//! In-process tests of the operator's backup and check against a real
//! SQLite file: the backup is a consistent, checked copy taken while the
//! writer keeps committing, and an existing file is never overwritten.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use acme_frontend::admin::{backup_database, check_database};
use acme_frontend::error::Error;
use acme_frontend::store::{self, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writes_go_on_is_consistent_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("akamu.db");
    let store = Store::open(&db_path).expect("open");
    let seed = |from: usize, to: usize| {
        let keys: Vec<(String, Vec<u8>)> = (from..to)
            .map(|i| (format!("kid-{i}"), vec![7u8; 32]))
            .collect();
        move |c: &mut store::Conn| store::eab::seed(c, &keys, 1)
    };
    store.run(seed(0, 100)).await.expect("seed");

    // Writers keep committing while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                store
                    .run(seed(n, n + 10))
                    .await
                    .expect("write during backup");
                n += 10;
            }
            n
        })
    };
    let out = dir.path().join("backup.db");
    let (db, o) = (db_path.clone(), out.clone());
    let done = tokio::task::spawn_blocking(move || backup_database(&db, &o))
        .await
        .expect("join")
        .expect("backup");
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("join writer");
    assert_eq!(done.path, out);
    assert!(done.bytes > 0);
    assert_eq!(done.certificates, 0);
    let report = check_database(&out).expect("check the backup");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup holds EAB keys");
    }
    // The copy holds a prefix of the writes: at least the first 100 keys,
    // at most what the writers committed, in whole batches of 10.
    let mut copy = Store::open_read_only(&out).expect("open the copy");
    let keys = (0..written)
        .filter(|i| {
            store::eab::unused_key(&mut copy, &format!("kid-{i}"))
                .expect("read")
                .is_some()
        })
        .count();
    assert!((100..=written).contains(&keys), "{keys} of {written}");
    assert_eq!(keys % 10, 0, "a batch is in the copy whole or not at all");
    assert!(
        (0..keys).all(|i| store::eab::unused_key(&mut copy, &format!("kid-{i}"))
            .expect("read")
            .is_some()),
        "the copy is a snapshot: no gap"
    );

    // A second backup to the same file is refused and leaves it alone.
    let before = std::fs::read(&out).expect("read backup");
    let refused = backup_database(&db_path, &out);
    assert!(
        matches!(&refused, Err(Error::Io { context, .. }) if *context == "refusing to overwrite"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&out).expect("read backup"), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial file is left behind");
}
