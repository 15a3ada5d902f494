-- External Account Binding keys (RFC 8555 §7.3.4), seeded from [server.eab_keys]
-- with insert-or-ignore: a consumed key is never revived by a restart.
CREATE TABLE eab_keys (
    kid         TEXT    PRIMARY KEY NOT NULL,
    hmac_key    BYTEA    NOT NULL,
    account_id  TEXT    REFERENCES accounts(id),   -- set when consumed
    created     BIGINT  NOT NULL,
    consumed_at BIGINT
);
