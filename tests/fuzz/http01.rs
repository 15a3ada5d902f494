//! http-01 responses (RFC 8555 §8.3) as the validator reads them: a raw TCP
//! server on loopback answers every request with the case's bytes (status
//! line, headers, body, redirects and all) and closes.

use std::sync::{Arc, Mutex};

use shared_proto::Identifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use validator_worker::config::Config;
use validator_worker::probe::Prober;

use crate::harness::{run, runtime};

const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
const KEY_AUTH: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

#[test]
fn http01_responses() {
    let rt = runtime();
    let listener = rt.block_on(async { TcpListener::bind("127.0.0.1:0").await.unwrap() });
    let port = listener.local_addr().unwrap().port();
    let answer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let served = answer.clone();
    rt.spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let bytes = served.lock().unwrap().clone();
            tokio::spawn(async move {
                // Read the request head, then answer and close.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
            });
        }
    });

    let mut config = Config::new("unused.sock", vec![0]);
    config.allow_private_targets = true;
    config.connect_timeout_ms = 1_000;
    config.probe_timeout_ms = 3_000;
    config.http_validation_port = port;
    config.dns_resolver_addr = Some("127.0.0.1:9".parse().unwrap());
    let prober = Prober::new(config).unwrap();
    let identifier = Identifier::ip("127.0.0.1".parse().unwrap());

    let ok = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{KEY_AUTH}",
        KEY_AUTH.len()
    );
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{KEY_AUTH}\r\n0\r\n\r\n",
        KEY_AUTH.len()
    );
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/.well-known/acme-challenge/{TOKEN}\r\nContent-Length: 0\r\n\r\n"
    );
    let seeds: Vec<Vec<u8>> = vec![
        ok.clone().into_bytes(),
        chunked.into_bytes(),
        format!("HTTP/1.0 200 OK\r\n\r\n  {KEY_AUTH}\n").into_bytes(),
        redirect.into_bytes(),
        b"HTTP/1.1 301 Moved\r\nLocation: https://a.test:443/x\r\n\r\n".to_vec(),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\nabc".to_vec(),
    ];
    let check = |input: &[u8]| {
        *answer.lock().unwrap() = input.to_vec();
        rt.block_on(validator_worker::http01::validate(
            &prober,
            &identifier,
            TOKEN,
            KEY_AUTH,
        ))
    };
    assert!(check(ok.as_bytes()).is_ok());
    run("http-01", &seeds, 300, |input| {
        if check(input).is_ok() {
            // Only a body that is the key authorization validates.
            assert!(
                input
                    .windows(KEY_AUTH.len())
                    .any(|w| w == KEY_AUTH.as_bytes()),
                "validated without the key authorization"
            );
        }
    });
}
