-- RFC 9799 onion-csr-01: the CSR (base64url DER) the client posted to the
-- challenge, kept until the validator has judged it, so a probe restarted
-- after a frontend restart sees the same response.
ALTER TABLE challenges ADD COLUMN response TEXT;
