"""An independent judge of the transparency log, sharing no code with Akamu.

Fetches <log>/checkpoint, checks its C2SP signed-note Ed25519 signature
with pyca/cryptography against the verifier key given on the command line
(key ID = SHA-256(name || "\\n" || 0x01 || key)[:4]), parses the C2SP
tlog-checkpoint body, fetches every entry bundle the size implies
(tlog-tiles paths, uint16-length-prefixed entries), recomputes the RFC 9162
root with hashlib and compares it with the signed one.

Usage: tlog_judge.py LOG_URL VERIFIER_KEY CA_BUNDLE
Prints {"size", "root", "entry_sha256": [...]} and exits 0 when everything
holds; prints the reason and exits 1 otherwise.
"""

import base64
import hashlib
import json
import ssl
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(msg):
    print(msg)
    sys.exit(1)


def fetch(ctx, url):
    with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
        return r.read()


def tile_path(index):
    groups = []
    while True:
        groups.append(index % 1000)
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join(["x%03d" % g for g in groups[:-1]] + ["%03d" % groups[-1]])


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def main():
    log, vkey, bundle = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(cafile=bundle)
    name, key_id, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    if key[0] != 1 or len(key) != 33:
        fail("not an Ed25519 verifier key")
    pub = Ed25519PublicKey.from_public_bytes(key[1:])
    want_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if want_id.hex() != key_id:
        fail("verifier key id does not match")

    note = fetch(ctx, log + "/checkpoint").decode("utf-8")
    split = note.rfind("\n\n")
    if split < 0:
        fail("no signature block")
    body, sigs = note[: split + 1], note[split + 2 :]
    verified = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail("signature line without em dash: %r" % line)
        signer, sig = line[2:].split(" ", 1)
        raw = base64.b64decode(sig)
        if signer != name or raw[:4] != want_id:
            continue
        try:
            pub.verify(raw[4:], body.encode("utf-8"))
            verified = True
        except InvalidSignature:
            fail("checkpoint signature does not verify")
    if not verified:
        fail("no signature by the key")
    lines = body.split("\n")
    if lines[0] != name:
        fail("origin %r is not the key name %r" % (lines[0], name))
    size = int(lines[1])
    root = base64.b64decode(lines[2])

    entries = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        path = "/tile/entries/" + tile_path(n) + ("" if width == 256 else ".p/%d" % width)
        data = fetch(ctx, log + path)
        got = []
        while data:
            length = int.from_bytes(data[:2], "big")
            got.append(data[2 : 2 + length])
            data = data[2 + length :]
        if len(got) != width:
            fail("%s: %d entries, expected %d" % (path, len(got), width))
        entries.extend(got)
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
    if mth(leaves) != root:
        fail("recomputed root differs from the signed checkpoint")
    print(
        json.dumps(
            {
                "size": size,
                "root": root.hex(),
                "entry_sha256": [hashlib.sha256(e).hexdigest() for e in entries],
            }
        )
    )


main()
