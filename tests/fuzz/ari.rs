//! ARI certificate identifiers (RFC 9773 §4.1) as the frontend's
//! `renewalInfo` resource and `replaces` read them.

use acme_frontend::protocol::ari::CertId;

use crate::harness::run;

#[test]
fn cert_ids() {
    let seeds: Vec<Vec<u8>> = [
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.ALvs",
        "AQ.AQ",
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE-_w0123456789ABCDEFGHIJ",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run("ari-cert-id", &seeds, 2000, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        if let Ok(id) = CertId::parse(text) {
            // What parses is canonical: it prints back as it was read.
            assert_eq!(id.text(), text);
            assert_eq!(CertId::parse(&id.text()).unwrap(), id);
            let _ = id.serial_hex();
        }
    });
}
