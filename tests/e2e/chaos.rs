//! Chaos drill (issue 18): instant-acme clients issue certificates at a
//! steady pace while a driver `kill -9`s a random process of the CA
//! (frontend, signer or validator, by the pid it recorded) at random
//! moments. The launcher restarts a dead signer or validator; the driver
//! restarts a dead frontend, as systemd would.
//!
//! Afterwards: every certificate a client received is in the database and
//! in the signer's audit log (`akamu-cli audit reconcile` finds no
//! difference, `audit verify` passes), no order or challenge stays
//! `processing`, every failed request got an RFC 8555 problem document or
//! lost its connection to a killed process (never a malformed answer), and
//! every client, retrying, gets one more certificate.
//!
//! The test command runs it for `AKAMU_CHAOS_SECS` (default 45) seconds;
//! `scripts/chaos.sh` runs it longer and prints the report, which is also
//! written as JSON to `AKAMU_CHAOS_REPORT` when set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl, SqliteConnection};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::support::certs::leaf_of;
use crate::support::client::{account_builder_trusting, csr};
use crate::support::http01::Http01Server;
use crate::support::operator::akamu_cli;
use crate::support::procs::{Ca, CaOptions};

/// One issuance attempt's outcome, by class.
#[derive(Debug)]
enum Outcome {
    Issued {
        serial: String,
        at: Instant,
    },
    /// An RFC 8555 problem document (its type).
    Problem(String),
    /// The connection failed or broke (a killed process).
    Connection,
    /// Polling gave up (e.g. an order stuck while a peer was down).
    Timeout,
    /// An answer that is neither a success nor a problem document.
    Malformed(String),
}

fn classify(e: &instant_acme::Error) -> Outcome {
    match e {
        instant_acme::Error::Api(p) => Outcome::Problem(
            p.r#type
                .as_deref()
                .unwrap_or("(no type)")
                .trim_start_matches("urn:ietf:params:acme:error:")
                .to_owned(),
        ),
        instant_acme::Error::Hyper(_) | instant_acme::Error::Other(_) => Outcome::Connection,
        instant_acme::Error::Timeout(_) => Outcome::Timeout,
        other => Outcome::Malformed(other.to_string()),
    }
}

fn serial_hex(pem: &str) -> String {
    leaf_of(pem)
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .expect("serial")
        .to_ascii_lowercase()
        .trim_start_matches('0')
        .to_owned()
}

/// One full issuance for `name`; any failure is classified, never a panic.
async fn issue_once(account: &Account, http: &Http01Server, name: &str) -> Outcome {
    let attempt = async {
        let ids = [Identifier::Dns(name.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or(instant_acme::Error::Str("no http-01 challenge"))?;
            http.set(&challenge.token, challenge.key_authorization().as_str());
            challenge.set_ready().await?;
        }
        let policy = RetryPolicy::new()
            .initial_delay(Duration::from_millis(100))
            .backoff(1.5)
            .timeout(Duration::from_secs(30));
        let status = order.poll_ready(&policy).await?;
        if status != OrderStatus::Ready {
            let problem = order
                .state()
                .error
                .as_ref()
                .and_then(|p| p.r#type.clone())
                .unwrap_or_else(|| format!("order {status:?} without a problem"));
            return Ok(Err(problem));
        }
        let (der, _key) = csr(&[name]);
        order.finalize_csr(&der).await?;
        let pem = order.poll_certificate(&policy).await?;
        Ok::<_, instant_acme::Error>(Ok(pem))
    };
    match tokio::time::timeout(Duration::from_secs(90), attempt).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(e)) => classify(&e),
        Ok(Ok(Err(problem))) if problem.starts_with("urn:ietf:params:acme:error:") => {
            Outcome::Problem(
                problem
                    .trim_start_matches("urn:ietf:params:acme:error:")
                    .into(),
            )
        }
        Ok(Ok(Err(problem))) => Outcome::Malformed(problem),
        Ok(Ok(Ok(pem))) => Outcome::Issued {
            serial: serial_hex(&pem),
            at: Instant::now(),
        },
    }
}

/// An account, retried while the CA is being killed.
async fn account(directory: &str, ca_cert: &std::path::Path) -> Account {
    loop {
        let created = account_builder_trusting(ca_cert)
            .create(
                &NewAccount {
                    contact: &[],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory.to_owned(),
                None,
            )
            .await;
        match created {
            Ok((account, _)) => return account,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// splitmix64, seeded from `AKAMU_CHAOS_SEED` or the clock.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn count(db: &std::path::Path, query: &str) -> i64 {
    let mut conn = SqliteConnection::establish(&format!("file:{}?mode=ro", db.display()))
        .expect("open the database read-only");
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "({query})"
    )))
    .get_result(&mut conn)
    .unwrap_or_else(|e| panic!("{query}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_nothing() {
    let secs = env_u64("AKAMU_CHAOS_SECS", 45);
    let clients = env_u64("AKAMU_CHAOS_CLIENTS", 3);
    let seed = env_u64(
        "AKAMU_CHAOS_SEED",
        u64::from(std::process::id()) ^ time::OffsetDateTime::now_utc().unix_timestamp() as u64,
    );
    let mut rng = Rng(seed);
    let mut ca = Ca::start_async(CaOptions::default()).await;
    let http = Arc::new(Http01Server::start(ca.http_validation_port()).await);
    let directory = ca.directory().to_owned();
    let ca_cert = ca.ca_cert().to_owned();
    let db = ca.db_path();
    let audit_log = ca.state_dir().join("audit.log");

    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, outcomes, stop) = (http.clone(), outcomes.clone(), stop.clone());
        let (directory, ca_cert) = (directory.clone(), ca_cert.clone());
        tasks.push(tokio::spawn(async move {
            let account = account(&directory, &ca_cert).await;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let outcome = issue_once(&account, &http, &format!("c{c}-{n}.localhost")).await;
                if !matches!(outcome, Outcome::Issued { .. }) {
                    // A client backs off a little after a failure.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                outcomes.lock().expect("lock").push(outcome);
            }
            account
        }));
    }

    // The driver: a random victim every 0.5–3 s until the time is up.
    let started = Instant::now();
    let mut kills: Vec<(&'static str, Instant, Duration)> = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(500 + rng.below(2500))).await;
        let victim = ["frontend", "signer", "validator"][rng.below(3) as usize];
        let pid = match victim {
            "frontend" => Some(ca.ready().frontend_pid),
            "signer" => ca.signer_pid(),
            _ => ca.validator_pid(),
        };
        let Some(pid) = pid else {
            continue; // being restarted right now
        };
        let at = Instant::now();
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
        match victim {
            "frontend" => {
                ca.restart_after_crash(Vec::new(), Duration::from_secs(60))
                    .await;
            }
            "signer" => {
                let new = ca
                    .wait_restarted("ca-signer", pid, Duration::from_secs(60))
                    .await;
                ca.wait_listening(new, Duration::from_secs(60)).await;
            }
            _ => {
                let new = ca
                    .wait_restarted("validator-work", pid, Duration::from_secs(60))
                    .await;
                ca.wait_listening(new, Duration::from_secs(60)).await;
            }
        }
        kills.push((victim, at, at.elapsed()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut accounts = Vec::new();
    for task in tasks {
        accounts.push(task.await.expect("client task"));
    }

    // A client that retries completes: one more certificate each, now.
    for (c, account) in accounts.iter().enumerate() {
        let mut last = None;
        for attempt in 0..5 {
            match issue_once(account, &http, &format!("retry{c}-{attempt}.localhost")).await {
                outcome @ Outcome::Issued { .. } => {
                    last = Some(outcome);
                    break;
                }
                other => last = Some(other),
            }
        }
        let outcome = last.expect("at least one attempt");
        assert!(
            matches!(outcome, Outcome::Issued { .. }),
            "client {c} did not complete after the drill: {outcome:?}"
        );
        outcomes.lock().expect("lock").push(outcome);
    }

    let outcomes = std::mem::take(&mut *outcomes.lock().expect("lock"));
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut issued = Vec::new();
    let mut malformed = Vec::new();
    for o in &outcomes {
        let key = match o {
            Outcome::Issued { serial, at } => {
                issued.push((serial.clone(), *at));
                "issued".to_owned()
            }
            Outcome::Problem(t) => format!("problem:{t}"),
            Outcome::Connection => "connection".to_owned(),
            Outcome::Timeout => "timeout".to_owned(),
            Outcome::Malformed(m) => {
                malformed.push(m.clone());
                "malformed".to_owned()
            }
        };
        *by_type.entry(key).or_default() += 1;
    }
    // Time to recover: from a kill to the next certificate any client got.
    let mut recover: Vec<f64> = kills
        .iter()
        .filter_map(|(_, at, _)| {
            issued
                .iter()
                .filter(|(_, t)| t > at)
                .map(|(_, t)| t.duration_since(*at).as_secs_f64())
                .reduce(f64::min)
        })
        .collect();
    recover.sort_by(f64::total_cmp);
    let restart: Vec<f64> = kills.iter().map(|(_, _, d)| d.as_secs_f64()).collect();
    let mut kills_by: BTreeMap<&str, u64> = BTreeMap::new();
    for (victim, _, _) in &kills {
        *kills_by.entry(victim).or_default() += 1;
    }
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let report = json!({
        "seconds": secs,
        "clients": clients,
        "seed": seed,
        "kills": kills_by,
        "attempts": outcomes.len(),
        "outcomes": by_type,
        "recover_secs": {
            "min": recover.first(), "median": pct(&recover, 0.5),
            "p95": pct(&recover, 0.95), "max": recover.last(),
        },
        "restart_secs_max": restart.iter().copied().reduce(f64::max),
    });
    eprintln!("CHAOS REPORT {report}");
    if let Ok(path) = std::env::var("AKAMU_CHAOS_REPORT") {
        std::fs::write(path, report.to_string()).expect("write the report");
    }

    assert!(kills.len() >= 5, "only {} kills in {secs} s", kills.len());
    assert!(
        malformed.is_empty(),
        "answers that are no problem documents: {malformed:?}"
    );
    assert!(issued.len() as u64 > clients, "{report}");

    // Nothing stays processing: the recovery sweep finishes what a kill
    // interrupted.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stuck = count(
            &db,
            "SELECT COUNT(*) FROM orders WHERE status = 'processing'",
        ) + count(
            &db,
            "SELECT COUNT(*) FROM challenges WHERE status = 'processing'",
        );
        if stuck == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stuck} orders/challenges still processing"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Every certificate a client holds is in the database and the audit log.
    let audit = std::fs::read_to_string(&audit_log).expect("read the audit log");
    for (serial, _) in &issued {
        let in_db = count(
            &db,
            &format!("SELECT COUNT(*) FROM certificates WHERE serial_number = '{serial}'"),
        );
        assert_eq!(in_db, 1, "certificate {serial} is not in the database");
        assert!(
            audit.contains(&format!("\"serial\":\"{serial}\"")),
            "certificate {serial} is not in the audit log"
        );
    }
    akamu_cli(&["audit", "verify", &audit_log.to_string_lossy()], &[]).assert_success();
    let reconcile = akamu_cli(
        &[
            "audit",
            "reconcile",
            "--audit-log",
            &audit_log.to_string_lossy(),
            "--database",
            &db.to_string_lossy(),
        ],
        &[],
    );
    reconcile.assert_success();
    drop(ca);
}
