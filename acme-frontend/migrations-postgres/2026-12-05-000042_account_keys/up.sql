-- Every key an account has used (draft-ietf-acme-dns-persist-02 asks the
-- CA to keep them: a persistent record names the account, and a key
-- rollover must not orphan or re-open what was validated under an older
-- key). One row per (account, key thumbprint); `retired` is when a
-- key-change replaced it, NULL while it is the account's key.
CREATE TABLE account_keys (
    account_id     TEXT   NOT NULL REFERENCES accounts (id),
    jwk_thumbprint TEXT   NOT NULL,
    added          BIGINT NOT NULL,
    retired        BIGINT,
    PRIMARY KEY (account_id, jwk_thumbprint)
);
INSERT INTO account_keys (account_id, jwk_thumbprint, added)
    SELECT id, jwk_thumbprint, created FROM accounts;
