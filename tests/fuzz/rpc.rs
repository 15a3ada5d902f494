//! What the signer and the validator read from their sockets: the
//! connection preamble, tarpc's length-delimited bincode frames (the
//! decoder `shared_proto::transport::framed` builds) and the validation
//! statements inside an issue request.

use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_proto::peer::AllowList;
use shared_proto::signer::{
    CrlRequest, IssueRequest, IssuedCertificate, RevokedEntry, SignerRpcRequest, SignerRpcResponse,
};
use shared_proto::statement::{
    CaaCheck, SignedStatement, Statement, StatementKey, StatementVerifier, public_path,
};
use shared_proto::transport::{accept_handshake, connect, framed};
use shared_proto::validator::{ChallengeType, ValidateRequest, ValidatorRpcRequest};
use shared_proto::{Identifier, PROTOCOL_VERSION};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_serde::{Deserializer, Serializer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::harness::{run, run_deep, runtime};

const ACCOUNT: &str = "https://ca.test/acme/acct/1";

struct Keys {
    _dir: tempfile::TempDir,
    key: StatementKey,
    verifier: StatementVerifier,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statement.key");
    let key = StatementKey::load_or_create(&path).unwrap();
    let verifier = StatementVerifier::from_file(&public_path(&path)).unwrap();
    Keys {
        _dir: dir,
        key,
        verifier,
    }
}

fn statements(key: &StatementKey) -> Vec<SignedStatement> {
    let now = 1_800_000_000;
    let base = Statement {
        id: "0123456789abcdef".into(),
        account_uri: ACCOUNT.into(),
        identifier: Identifier::dns("a.test"),
        challenge_type: ChallengeType::Http01,
        validated_at: now,
        expires: now + 3600,
        covers_subdomains: false,
        caa: Some(CaaCheck::Checked { at: now }),
        perspective: None,
    };
    let variants = [
        base.clone(),
        Statement {
            identifier: Identifier::dns("*.b.test"),
            challenge_type: ChallengeType::Dns01,
            covers_subdomains: true,
            caa: Some(CaaCheck::NotConfigured),
            ..base.clone()
        },
        Statement {
            identifier: Identifier::ip("127.0.0.1".parse().unwrap()),
            challenge_type: ChallengeType::TlsAlpn01,
            caa: Some(CaaCheck::NotApplicable),
            ..base.clone()
        },
        Statement { caa: None, ..base },
    ];
    variants.into_iter().map(|s| key.sign(s).unwrap()).collect()
}

/// The bytes `framed` puts on the wire for `items`.
async fn frames<T: Serialize + DeserializeOwned + Unpin>(items: Vec<T>) -> Vec<u8> {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut sink = framed::<_, (), T>(a);
    for item in items {
        sink.send(item).await.unwrap();
    }
    drop(sink);
    let mut out = Vec::new();
    b.read_to_end(&mut out).await.unwrap();
    out
}

/// Feeds `input` to the frame decoder and returns every item it yields
/// before the end of the stream or its first error.
async fn decode<T: DeserializeOwned + Unpin>(input: &[u8]) -> Vec<T> {
    let (mut a, b) = UnixStream::pair().unwrap();
    let mut stream = framed::<_, T, ()>(b);
    let writer = async {
        a.write_all(input).await.unwrap();
        a.shutdown().await.unwrap();
    };
    let reader = async {
        let mut items = Vec::new();
        while let Some(Ok(item)) = stream.next().await {
            items.push(item);
        }
        items
    };
    let ((), items) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("the frame decoder neither ended nor failed on a closed stream");
    items
}

fn request<T>(id: u64, message: T) -> tarpc::ClientMessage<T> {
    tarpc::ClientMessage::Request(tarpc::Request {
        context: tarpc::context::current(),
        id,
        message,
    })
}

/// What the signer reads: requests, with statements checked as its
/// `issue_certificate` checks them.
#[test]
fn signer_request_frames() {
    let rt = runtime();
    let keys = keys();
    let signed = statements(&keys.key);
    let issue = IssueRequest {
        csr_der: vec![0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00],
        identifiers: vec![Identifier::dns("a.test"), Identifier::dns("c.b.test")],
        not_before: Some(1_800_000_000),
        not_after: None,
        account_uri: ACCOUNT.into(),
        order_id: "42".into(),
        statements: signed.clone(),
        profile: Some("tlsserver".into()),
        processing_since: Some(1_800_000_001),
        star: None,
    };
    let messages = || {
        vec![
            request(
                1,
                SignerRpcRequest::IssueCertificate {
                    request: issue.clone(),
                },
            ),
            request(2, SignerRpcRequest::CaInfo {}),
            request(
                3,
                SignerRpcRequest::GenerateCrl {
                    request: CrlRequest {
                        revoked: vec![RevokedEntry {
                            serial_hex: "0a1b".into(),
                            revoked_at: 1_800_000_000,
                            reason: Some(1),
                        }],
                    },
                },
            ),
            request(4, SignerRpcRequest::Metrics {}),
            request(
                5,
                SignerRpcRequest::LogRead {
                    request: shared_proto::signer::LogRead::HashTile {
                        level: 0,
                        index: 1,
                        width: 256,
                    },
                },
            ),
            tarpc::ClientMessage::Cancel {
                trace_context: Default::default(),
                request_id: 1,
            },
        ]
    };
    let mut seeds = Vec::new();
    for m in messages() {
        seeds.push(rt.block_on(frames(vec![m])));
    }
    seeds.push(rt.block_on(frames(messages())));
    // The seeds decode.
    for seed in &seeds {
        assert!(
            !rt.block_on(decode::<tarpc::ClientMessage<SignerRpcRequest>>(seed))
                .is_empty()
        );
    }
    run_deep("signer-frames", &seeds, 500, 5, |input| {
        let items = rt.block_on(decode::<tarpc::ClientMessage<SignerRpcRequest>>(input));
        let decoded = !items.is_empty();
        for item in items {
            if let tarpc::ClientMessage::Request(tarpc::Request {
                message: SignerRpcRequest::IssueCertificate { request },
                ..
            }) = item
            {
                for s in &request.statements {
                    if let Ok(statement) = keys.verifier.verify(s) {
                        assert!(signed.contains(s), "a mutated statement verified: {s:?}");
                        for id in &request.identifiers {
                            let _ = statement.covers(id, &request.account_uri, 1_800_000_100);
                        }
                    }
                }
            }
        }
        decoded
    });
}

/// What the validator reads.
#[test]
fn validator_request_frames() {
    let rt = runtime();
    let keys = keys();
    let signed = statements(&keys.key);
    let validate = ValidateRequest {
        identifier: Identifier::dns("a.test"),
        challenge_type: ChallengeType::Http01,
        token: "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA".into(),
        key_authorization: "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumb".into(),
        account_uri: ACCOUNT.into(),
        authz_expires: 1_800_000_000,
        covers_subdomains: true,
        onion_csr: Some(vec![0x30, 0x03, 0x02, 0x01, 0x00]),
        persist: Some(shared_proto::validator::PersistAccount {
            account_hash_prefix: "https://ca.test/acme/account-hash/".into(),
            key_thumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into(),
            retained: vec!["https://ca.test/acme/account-hash/sha-256/x".into()],
        }),
    };
    let messages = vec![
        request(
            1,
            ValidatorRpcRequest::ValidateChallenge { request: validate },
        ),
        request(2, ValidatorRpcRequest::Metrics {}),
        request(3, ValidatorRpcRequest::ValidatorInfo {}),
        request(
            4,
            ValidatorRpcRequest::RecheckCaa {
                statement: signed[0].clone(),
            },
        ),
        request(
            5,
            ValidatorRpcRequest::CaaForSubdomain {
                statement: signed[1].clone(),
                name: Identifier::dns("x.b.test"),
            },
        ),
    ];
    let mut seeds = Vec::new();
    for m in messages {
        seeds.push(rt.block_on(frames(vec![m])));
    }
    run("validator-frames", &seeds, 400, |input| {
        let _ = rt.block_on(decode::<tarpc::ClientMessage<ValidatorRpcRequest>>(input));
    });
}

/// What the frontend reads back from the signer (a compromised or
/// confused signer must not crash it either).
#[test]
fn signer_response_frames() {
    let rt = runtime();
    let issued = IssuedCertificate {
        der: vec![0x30; 300],
        serial_hex: "0a1b2c".into(),
        not_before: 1_800_000_000,
        not_after: 1_800_086_400,
        chain_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        mtc_log_index: Some(3),
    };
    let messages = vec![
        tarpc::Response {
            request_id: 1,
            message: Ok(SignerRpcResponse::IssueCertificate(Ok(issued))),
        },
        tarpc::Response {
            request_id: 2,
            message: Err(tarpc::ServerError::new(
                std::io::ErrorKind::TimedOut,
                "deadline".into(),
            )),
        },
    ];
    let mut seeds = Vec::new();
    for m in messages {
        seeds.push(rt.block_on(frames(vec![m])));
    }
    run("signer-response-frames", &seeds, 300, |input| {
        let _ = rt.block_on(decode::<tarpc::Response<SignerRpcResponse>>(input));
    });
}

/// A statement alone through the wire's bincode: whatever decodes and
/// verifies is one the validator signed, unchanged.
#[test]
fn statements_on_the_wire() {
    let keys = keys();
    let signed = statements(&keys.key);
    let seeds: Vec<Vec<u8>> = signed
        .iter()
        .map(|s| {
            let mut codec = Bincode::<SignedStatement, SignedStatement>::default();
            Pin::new(&mut codec).serialize(s).unwrap().to_vec()
        })
        .collect();
    run_deep("statement", &seeds, 1000, 2, |input| {
        let mut codec = Bincode::<SignedStatement, SignedStatement>::default();
        let Ok(decoded) = Pin::new(&mut codec).deserialize(&BytesMut::from(input)) else {
            return false;
        };
        let _ = decoded.statement.signing_bytes();
        let _ = decoded.statement.caa_is_fresh(1_800_000_100, 3600);
        let _ = decoded.statement.is_fresh(1_800_000_100, 3600);
        if keys.verifier.verify(&decoded).is_ok() {
            assert!(
                signed.contains(&decoded),
                "a mutated statement verified: {decoded:?}"
            );
        }
        true
    });
}

fn good_preamble() -> Vec<u8> {
    let mut out = b"AKAMU\0".to_vec();
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out
}

/// The server side of the preamble: only the exact preamble of our
/// version opens a connection.
#[test]
fn preamble_server_side() {
    let rt = runtime();
    let me = nix::unistd::geteuid().as_raw();
    let allow = AllowList::new([me]);
    let good = good_preamble();
    let mut older = b"AKAMU\0".to_vec();
    older.extend_from_slice(&(PROTOCOL_VERSION - 1).to_be_bytes());
    let seeds = vec![good.clone(), older, b"GET / HTTP/1.1\r\n".to_vec()];
    run("preamble-server", &seeds, 500, |input| {
        let ok = rt.block_on(async {
            let (mut client, mut server) = UnixStream::pair().unwrap();
            client.write_all(input).await.unwrap();
            client.shutdown().await.unwrap();
            accept_handshake(&mut server, &allow).await.is_ok()
        });
        assert_eq!(ok, input.starts_with(&good), "accepted {input:?}");
    });
}

/// The client side: only our version with status OK is a connection.
#[test]
fn preamble_client_side() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let listener = rt.block_on(async { UnixListener::bind(&path).unwrap() });
    let mut good = good_preamble();
    good.push(0);
    let mut refused = good_preamble();
    refused.push(2);
    let seeds = vec![good.clone(), refused];
    run("preamble-client", &seeds, 500, |input| {
        let ok = rt.block_on(async {
            let server = async {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut hello = [0u8; 8];
                s.read_exact(&mut hello).await.unwrap();
                let _ = s.write_all(input).await;
            };
            let (ok, ()) = tokio::join!(async { connect(&path).await.is_ok() }, server);
            ok
        });
        assert_eq!(ok, input.starts_with(&good), "connected on {input:?}");
    });
}
