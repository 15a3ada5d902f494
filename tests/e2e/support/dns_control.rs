//! A tiny HTTP control endpoint on 127.0.0.1 through which programs outside
//! the test process (lego's `exec` DNS provider, certbot's manual hooks)
//! publish and remove TXT records in the test [`DnsServer`].
//!
//! `GET /add?name=N&value=V` adds one TXT value, `GET /remove?name=N&value=V`
//! removes it; both answer `200 ok`. Anything else is 404, a missing
//! parameter 400. [`hook_scripts`] writes the shell scripts that call it
//! with curl.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::dns::{DnsRecords, DnsServer};

/// A running control endpoint. Stops when dropped.
pub(crate) struct DnsControl {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl DnsControl {
    /// Serves control requests for `dns` on a free port of 127.0.0.1.
    pub(crate) async fn start(dns: &DnsServer) -> DnsControl {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind DNS control endpoint");
        let addr = listener.local_addr().expect("local_addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(listener, dns.records(), log.clone()));
        DnsControl {
            url: format!("http://{addr}"),
            log,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Every request served so far, as `add NAME VALUE` / `remove NAME VALUE`.
    pub(crate) fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// The logged operations of kind `op` (`"add"` or `"remove"`).
    pub(crate) fn ops(&self, op: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.split(' ').next() == Some(op))
            .collect()
    }
}

impl Drop for DnsControl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The hook scripts, written into a directory by [`hook_scripts`].
#[derive(Debug, Clone)]
pub(crate) struct HookScripts {
    /// lego's `EXEC_PATH`: `script present|cleanup FQDN VALUE`.
    pub lego_exec: PathBuf,
    /// certbot's `--manual-auth-hook` (uses `CERTBOT_DOMAIN`, `CERTBOT_VALIDATION`).
    pub certbot_auth: PathBuf,
    /// certbot's `--manual-cleanup-hook`.
    pub certbot_cleanup: PathBuf,
}

/// Writes executable hook scripts into `dir` that publish and remove TXT
/// records through `control` with curl (loopback, no proxy).
pub(crate) fn hook_scripts(dir: &Path, control: &DnsControl) -> HookScripts {
    let url = control.url();
    let call = |op: &str, name: &str, value: &str| {
        format!(
            "exec curl --noproxy '*' -fsS --get --data-urlencode \"name={name}\" --data-urlencode \"value={value}\" '{url}/{op}'"
        )
    };
    let lego = format!(
        "#!/bin/sh\n# lego exec provider: $1 = present|cleanup, $2 = FQDN, $3 = value\nset -e\ncase \"$1\" in\n  present) {} ;;\n  cleanup) {} ;;\n  *) echo \"unexpected mode $1\" >&2; exit 2 ;;\nesac\n",
        call("add", "$2", "$3"),
        call("remove", "$2", "$3")
    );
    let auth = format!(
        "#!/bin/sh\nset -e\n{}\n",
        call(
            "add",
            "_acme-challenge.$CERTBOT_DOMAIN",
            "$CERTBOT_VALIDATION"
        )
    );
    let cleanup = format!(
        "#!/bin/sh\nset -e\n{}\n",
        call(
            "remove",
            "_acme-challenge.$CERTBOT_DOMAIN",
            "$CERTBOT_VALIDATION"
        )
    );
    HookScripts {
        lego_exec: write_script(dir, "lego-exec.sh", &lego),
        certbot_auth: write_script(dir, "certbot-auth.sh", &auth),
        certbot_cleanup: write_script(dir, "certbot-cleanup.sh", &cleanup),
    }
}

fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

async fn serve(listener: TcpListener, records: DnsRecords, log: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (records, log) = (records.clone(), log.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(records.clone(), log.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    records: DnsRecords,
    log: Arc<Mutex<Vec<String>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or("");
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    };
    let op = req.uri().path().trim_start_matches('/').to_owned();
    if op != "add" && op != "remove" {
        return Ok(text(StatusCode::NOT_FOUND, "unknown operation"));
    }
    let (Some(name), Some(value)) = (param("name"), param("value")) else {
        return Ok(text(StatusCode::BAD_REQUEST, "name and value are required"));
    };
    if op == "add" {
        records.add_txt(&name, &value);
    } else {
        records.remove_txt(&name, &value);
    }
    lock(&log).push(format!("{op} {name} {value}"));
    Ok(text(StatusCode::OK, "ok"))
}

/// Decodes `application/x-www-form-urlencoded` text (`+` and `%XX`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn text(code: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *rsp.status_mut() = code;
    rsp
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Eb+c"), "a.b c");
        assert_eq!(
            percent_decode("_acme-challenge.x.org."),
            "_acme-challenge.x.org."
        );
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[tokio::test]
    async fn scripts_publish_and_remove_txt() {
        let dns = DnsServer::start().await;
        let control = DnsControl::start(&dns).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let hooks = hook_scripts(dir.path(), &control);
        let name = "_acme-challenge.hook.example.org.";
        let out = tokio::process::Command::new(&hooks.lego_exec)
            .args(["present", name, "v-1_x"])
            .output()
            .await
            .expect("run script");
        assert!(out.status.success(), "{out:?}");
        let out = tokio::process::Command::new(&hooks.certbot_auth)
            .env("CERTBOT_DOMAIN", "hook.example.org")
            .env("CERTBOT_VALIDATION", "v-2")
            .output()
            .await
            .expect("run script");
        assert!(out.status.success(), "{out:?}");
        let mut got = dns.txt(name);
        got.sort();
        assert_eq!(got, vec!["v-1_x", "v-2"]);
        let out = tokio::process::Command::new(&hooks.lego_exec)
            .args(["cleanup", name, "v-1_x"])
            .output()
            .await
            .expect("run script");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(dns.txt(name), vec!["v-2"]);
        assert_eq!(control.ops("add").len(), 2);
        assert_eq!(control.ops("remove").len(), 1);
    }
}
