//! The test PostgreSQL server runs, answers SQL on its URL, keeps two
//! servers apart, and is gone (port closed, directory removed) once dropped.

use std::net::TcpStream;
use std::process::Command;

use test_kit::postgres::PgServer;

/// Runs `sql` through `psql` on `url` and returns its unaligned output.
fn psql(server: &PgServer, url: &str, sql: &str) -> String {
    let out = Command::new(server.bin().join("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn server_answers_and_is_removed_on_drop() {
    let a = PgServer::start().expect("start PostgreSQL (install the `postgresql` package)");
    let b = PgServer::start().expect("start a second PostgreSQL");
    assert_ne!(a.port(), b.port());

    // The fresh database is empty and writable.
    let url = a.url();
    assert!(url.starts_with("postgres://"), "{url}");
    assert_eq!(
        psql(
            &a,
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
    psql(&a, &url, "CREATE TABLE t (x BIGINT PRIMARY KEY)");
    psql(&a, &url, "INSERT INTO t VALUES (42)");
    assert_eq!(psql(&a, &url, "SELECT x FROM t"), "42");
    // The other server does not see it.
    assert_eq!(
        psql(
            &b,
            &b.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
        ),
        "0"
    );
    // A second database on the same server is separate.
    let other = a.create_database("other").expect("createdb");
    assert_eq!(
        psql(
            &a,
            &other,
            "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
        ),
        "0"
    );
    // Loopback only.
    assert_eq!(psql(&a, &url, "SHOW listen_addresses"), "127.0.0.1");

    let port = a.port();
    let dir_count = |p: u32| {
        std::fs::read_dir(std::env::temp_dir())
            .expect("temp dir")
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("akamu-pg-{p}-"))
            })
            .count()
    };
    assert_eq!(dir_count(std::process::id()), 2);
    drop(a);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open after drop"
    );
    assert_eq!(dir_count(std::process::id()), 1);
    drop(b);
    assert_eq!(dir_count(std::process::id()), 0);
}
