-- draft-ietf-acme-dns-persist-02 §4.2: the hashed account URIs that passed
-- a dns-persist-01 validation, with the name they were computed over (or
-- '*') and the key they were computed with, so that a record published
-- before a key rollover keeps validating (within keyRotationPeriod) until
-- a revocation with a certificate key prunes the account's hashes.
CREATE TABLE persist_hashes (
    account_id     TEXT   NOT NULL REFERENCES accounts (id),
    hashed_uri     TEXT   NOT NULL,
    domain         TEXT   NOT NULL,
    jwk_thumbprint TEXT   NOT NULL,
    validated      BIGINT NOT NULL,
    PRIMARY KEY (account_id, hashed_uri)
);
