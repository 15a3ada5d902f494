//! The log against its audit log: appends, the crash between the audit
//! record and the entry, and the damage that must stop the signer.

use std::path::Path;

use akamu_tlog::{NoteVerifier, TileKind, TilePath, Tree, leaf_hash};

use super::*;
use crate::audit::{self, AuditLog, Operation};

const ORIGIN: &str = "ca.example/log";

/// Opens the log at `dir` as the signer does: the entries file checked
/// against the audit log.
fn open(dir: &Path) -> Result<(MtcLog, AuditLog), MtcError> {
    let mut rec = Recovery::read(&dir.join("mtc.log"))?;
    let (audit, _) =
        AuditLog::open_observing(&dir.join("audit.log"), |r| rec.observe(r)).expect("audit opens");
    let key = key::load_or_generate(&dir.join("log.key"), true)?;
    Ok((rec.finish(ORIGIN, key)?, audit))
}

/// One issuance as `Issuer::sign_checked` does it: reserve, audit, commit.
fn issue(log: &MtcLog, audit: &AuditLog, der: &[u8], write_entry: bool) -> u64 {
    let r = log.reserve(der).expect("reserve");
    let index = r.index();
    audit
        .append(
            Operation::Issue,
            audit::Entry {
                certificate_der: Some(der.to_vec()),
                mtc_log_index: Some(index),
                ..audit::Entry::default()
            },
            1,
        )
        .expect("audit");
    if write_entry {
        r.commit().expect("commit");
    }
    index
}

fn cert(i: u32) -> Vec<u8> {
    format!("certificate {i}").into_bytes()
}

#[test]
fn appends_are_served_as_tiles_and_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, audit) = open(dir.path()).expect("open");
    for i in 0..300 {
        assert_eq!(issue(&log, &audit, &cert(i), true), u64::from(i));
    }
    assert_eq!(log.sign_checkpoint().expect("sign"), 300);
    let v = NoteVerifier::parse(&log.verifier_key()).expect("vkey");
    let cp = v.open_checkpoint(&log.checkpoint()).expect("opens");
    let tree = Tree::from_leaf_hashes((0..300).map(|i| leaf_hash(&cert(i))));
    assert_eq!((cp.size, cp.root), (300, tree.root()));

    let full = TilePath::parse("0/000").expect("path");
    assert_eq!(log.hash_tile(&full).expect("tile").len(), 256 * 32);
    let partial = TilePath::parse("0/001.p/44").expect("path");
    assert_eq!(log.hash_tile(&partial).expect("tile").len(), 44 * 32);
    assert!(
        log.hash_tile(&TilePath::parse("0/001.p/45").expect("p"))
            .is_none()
    );
    assert!(
        log.hash_tile(&TilePath::parse("1/000.p/2").expect("p"))
            .is_none()
    );
    assert_eq!(
        log.hash_tile(&TilePath {
            kind: TileKind::Hash(1),
            index: 0,
            width: 1
        })
        .expect("level 1"),
        tree.level(8)[0].to_vec()
    );
    let bundle = log.entries(1, 44, 0).expect("read").expect("bundle");
    let entries = akamu_tlog::tile::split_entries(&bundle).expect("parses");
    assert_eq!(entries.len(), 44);
    assert_eq!(entries[0], cert(256).as_slice());
    assert!(log.entries(1, 45, 0).expect("read").is_none());
    assert!(log.entries(u64::MAX, 1, 0).expect("read").is_none());
    assert!(log.entries(0, 3, 3).expect("read").is_none());
    let rest = log
        .entries(0, 256, 255)
        .expect("read")
        .expect("the last one");
    assert_eq!(
        akamu_tlog::tile::split_entries(&rest).expect("parses"),
        [cert(255).as_slice()]
    );
}

#[test]
fn a_crash_after_the_audit_record_loses_no_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (log, audit) = open(dir.path()).expect("open");
        issue(&log, &audit, &cert(0), true);
        issue(&log, &audit, &cert(1), true);
        log.sign_checkpoint().expect("sign");
        // The signer dies after the audit record, before the entry.
        issue(&log, &audit, &cert(2), false);
    }
    // And the first bytes of the third entry made it to the file.
    let path = dir.path().join("mtc.log");
    let published = std::fs::read_to_string(recover::checkpoint_path(&path)).expect("cp");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(&[0, 13, b'c']);
    std::fs::write(&path, &bytes).expect("write");

    let (log, _audit) = open(dir.path()).expect("reopens");
    assert_eq!(log.size(), 3);
    let v = NoteVerifier::parse(&log.verifier_key()).expect("vkey");
    let cp = v.open_checkpoint(&log.checkpoint()).expect("opens");
    let tree = Tree::from_leaf_hashes((0..3).map(|i| leaf_hash(&cert(i))));
    assert_eq!((cp.size, cp.root), (3, tree.root()));
    let old = v.open_checkpoint(&published).expect("old opens");
    assert_eq!(old.size, 2);
    drop(log);

    // Torn bytes that no audit record covers are not cut: refused.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(&[0, 13, b'c']);
    std::fs::write(&path, &bytes).expect("write");
    let e = open(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("partial entry"), "{e}");
}

#[test]
fn damage_stops_the_log_instead_of_being_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (log, audit) = open(dir.path()).expect("open");
        for i in 0..3 {
            issue(&log, &audit, &cert(i), true);
        }
        log.sign_checkpoint().expect("sign");
    }
    let path = dir.path().join("mtc.log");
    let good = std::fs::read(&path).expect("read");

    // A flipped byte in an entry: not the audited certificate.
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    std::fs::write(&path, &flipped).expect("write");
    let e = open(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("not the certificate"), "{e}");

    // An entry no audit record holds.
    let mut extra = good.clone();
    akamu_tlog::tile::push_entry(&mut extra, b"forged").expect("fits");
    std::fs::write(&path, &extra).expect("write");
    let e = open(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("records only 3"), "{e}");

    // A deleted file is rebuilt from the audit log, and then matches the
    // published checkpoint.
    std::fs::remove_file(&path).expect("rm");
    let (log, _) = open(dir.path()).expect("rebuilt");
    assert_eq!(log.size(), 3);
    drop(log);
    assert_eq!(std::fs::read(&path).expect("read"), good);
}

#[test]
fn a_published_checkpoint_the_entries_do_not_reach_stops_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (log, audit) = open(dir.path()).expect("open");
        for i in 0..3 {
            issue(&log, &audit, &cert(i), true);
        }
        log.sign_checkpoint().expect("sign");
    }
    // Both the entries and the audit log lose their last record (an
    // operator restoring old backups): the published checkpoint says 3.
    std::fs::remove_file(dir.path().join("mtc.log")).expect("rm");
    let audit_path = dir.path().join("audit.log");
    let text = std::fs::read_to_string(&audit_path).expect("read");
    let kept: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&audit_path, format!("{}\n", kept.join("\n"))).expect("write");
    let e = open(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("only 2 are left"), "{e}");
}

/// A bundle larger than one RPC answer is read in parts, each at most
/// `MAX_ENTRIES_BYTES` (the frontend asks again from the next entry).
#[test]
fn large_bundles_are_read_in_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, audit) = open(dir.path()).expect("open");
    let big = |i: u32| {
        let mut v = cert(i);
        v.resize(6000, b'x');
        v
    };
    for i in 0..200 {
        issue(&log, &audit, &big(i), true);
    }
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut parts = 0;
    while got.len() < 200 {
        let from = u16::try_from(got.len()).expect("small");
        let part = log.entries(0, 200, from).expect("read").expect("part");
        assert!(part.len() <= MAX_ENTRIES_BYTES, "{}", part.len());
        let entries = akamu_tlog::tile::split_entries(&part).expect("parses");
        got.extend(entries.into_iter().map(<[u8]>::to_vec));
        parts += 1;
    }
    assert!(parts > 1, "read in one part");
    assert_eq!(got, (0..200).map(big).collect::<Vec<_>>());
}
