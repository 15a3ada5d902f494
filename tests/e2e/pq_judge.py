"""An independent judge of Akamu's ML-DSA and Ed448 artefacts: pyca/cryptography >= 50.

Run by tests/e2e/pq.rs with the test venv's Python (.venv, made by
scripts/test.sh). Each subcommand exits 0 when the check holds and 1 (with
the reason on stderr) when it does not; facts the Rust side compares are
printed as one JSON object on stdout.

  verify-chain LEAF ISSUER [ISSUER...]  each certificate issued by the next, the
                                        last self-signed; prints key and algorithms
  csr SET NAME OUT [flip]               an ML-DSA CSR (SET = 44|65|87) for NAME,
                                        DER; `flip` flips a bit of its signature
  verify-csr CSR_DER                    the CSR's self-signature verifies
  new-account DIRECTORY CAFILE SET MODE registers an ML-DSA account with a JWS
                                        (MODE = ok|flip|context); prints the
                                        HTTP status, problem type, JWK, thumbprint
  crl URL CAFILE ISSUER SERIAL_HEX OUT  fetches the CRL until SERIAL is on it, its
                                        signature verifies with ISSUER, and a
                                        copy with one bit flipped does not
"""

import base64
import hashlib
import json
import ssl
import sys
import time
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

SETS = {
    "44": mldsa.MLDSA44PrivateKey,
    "65": mldsa.MLDSA65PrivateKey,
    "87": mldsa.MLDSA87PrivateKey,
}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_cert(path):
    with open(path, "rb") as f:
        data = f.read()
    certs = x509.load_pem_x509_certificates(data)
    return certs[0]


def key_name(key):
    return type(key).__name__.replace("PublicKey", "")


def verify_chain(paths):
    certs = [load_cert(p) for p in paths]
    for child, parent in zip(certs, certs[1:]):
        try:
            child.verify_directly_issued_by(parent)
        except Exception as e:  # InvalidSignature, ValueError, TypeError
            fail(f"{child.subject.rfc4514_string()} is not issued by "
                 f"{parent.subject.rfc4514_string()}: {e!r}")
    last = certs[-1]
    if last.issuer == last.subject:
        try:
            last.verify_directly_issued_by(last)
        except Exception as e:
            fail(f"the root's self-signature does not verify: {e!r}")
    print(json.dumps({
        "leaf_key": key_name(certs[0].public_key()),
        "algorithms": [c.signature_algorithm_oid.dotted_string for c in certs],
    }))


def make_csr(param_set, name, out, flip):
    key = SETS[param_set].generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, None)
    )
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    if flip:
        der[-20] ^= 0x01
    with open(out, "wb") as f:
        f.write(bytes(der))
    print(json.dumps({"public_key": b64(key.public_key().public_bytes_raw())}))


def verify_csr(path):
    with open(path, "rb") as f:
        csr = x509.load_der_x509_csr(f.read())
    if not csr.is_signature_valid:
        fail("the CSR's signature does not verify")
    print(json.dumps({"key": key_name(csr.public_key()),
                      "algorithm": csr.signature_algorithm_oid.dotted_string}))


def https(url, cafile, method="GET", body=None):
    ctx = ssl.create_default_context(cafile=cafile)
    headers = {"Content-Type": "application/jose+json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as rsp:
            return rsp.status, dict(rsp.headers), rsp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def new_account(directory_url, cafile, param_set, mode):
    _, _, body = https(directory_url, cafile)
    directory = json.loads(body)
    _, headers, _ = https(directory["newNonce"], cafile, method="HEAD")
    nonce = headers.get("Replay-Nonce") or headers.get("replay-nonce")
    key = SETS[param_set].generate()
    alg = f"ML-DSA-{param_set}"
    jwk = {"kty": "AKP", "alg": alg, "pub": b64(key.public_key().public_bytes_raw())}
    # RFC 9964 / RFC 7638: the required members alg, kty, pub, in order.
    canonical = json.dumps({"alg": jwk["alg"], "kty": "AKP", "pub": jwk["pub"]},
                           separators=(",", ":"))
    thumbprint = b64(hashlib.sha256(canonical.encode()).digest())
    url = directory["newAccount"]
    protected = b64(json.dumps({"alg": alg, "jwk": jwk, "nonce": nonce, "url": url}).encode())
    payload = b64(json.dumps({"termsOfServiceAgreed": True}).encode())
    signing_input = f"{protected}.{payload}".encode()
    if mode == "context":
        signature = bytearray(key.sign(signing_input, b"acme"))
    else:
        signature = bytearray(key.sign(signing_input))
    if mode == "flip":
        signature[len(signature) // 2] ^= 0x10
    jws = json.dumps({"protected": protected, "payload": payload,
                      "signature": b64(bytes(signature))}).encode()
    status, headers, body = https(url, cafile, method="POST", body=jws)
    problem = json.loads(body) if status >= 400 else {}
    print(json.dumps({"status": status, "type": problem.get("type"),
                      "jwk": jwk, "thumbprint": thumbprint}))


def check_crl(url, cafile, issuer_path, serial_hex, out):
    issuer = load_cert(issuer_path)
    serial = int(serial_hex, 16)
    deadline = time.time() + 30
    while True:
        status, _, der = https(url, cafile)
        if status == 200:
            crl = x509.load_der_x509_crl(der)
            if crl.get_revoked_certificate_by_serial_number(serial) is not None:
                break
        if time.time() > deadline:
            fail(f"no CRL listing {serial_hex} at {url} within 30 s (last status {status})")
        time.sleep(0.2)
    if not crl.is_signature_valid(issuer.public_key()):
        fail("the CRL's signature does not verify with the issuer's key")
    flipped = bytearray(der)
    flipped[-30] ^= 0x01
    if x509.load_der_x509_crl(bytes(flipped)).is_signature_valid(issuer.public_key()):
        fail("a CRL with a flipped signature bit still verifies")
    with open(out, "wb") as f:
        f.write(der)
    print(json.dumps({"algorithm": crl.signature_algorithm_oid.dotted_string,
                      "revoked": len(list(crl))}))


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "verify-chain":
        verify_chain(args)
    elif cmd == "csr":
        make_csr(args[0], args[1], args[2], len(args) > 3 and args[3] == "flip")
    elif cmd == "verify-csr":
        verify_csr(args[0])
    elif cmd == "new-account":
        new_account(*args)
    elif cmd == "crl":
        check_crl(*args)
    else:
        fail(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
