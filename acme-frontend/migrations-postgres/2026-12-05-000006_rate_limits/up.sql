-- Rate limits (acme-frontend/src/rate_limits.rs). One row per GCRA bucket
-- in use: its limit, its key (a client address, an account, an account and
-- an identifier, a registered domain) and its theoretical arrival time in
-- Unix milliseconds. A row whose TAT is in the past is a full bucket, the
-- same as no row. Kept in the database so every front end on it sees the
-- same buckets.
CREATE TABLE rate_limit_buckets (
    limit_name  TEXT    NOT NULL,
    bucket_key  TEXT    NOT NULL,
    tat         BIGINT  NOT NULL,
    PRIMARY KEY (limit_name, bucket_key)
);
CREATE INDEX idx_rate_limit_buckets_tat ON rate_limit_buckets(tat);

-- Account and identifier pairs paused after repeated failed validations:
-- new orders for the identifier by the account are refused until an
-- operator runs `akamu-cli admin unpause`. The value is the validated name
-- (without a wildcard label).
CREATE TABLE paused_identifiers (
    account_id        TEXT    NOT NULL REFERENCES accounts(id),
    identifier_type   TEXT    NOT NULL,
    identifier_value  TEXT    NOT NULL,
    paused_at         BIGINT  NOT NULL,
    PRIMARY KEY (account_id, identifier_type, identifier_value)
);

-- The pending-orders and pending-authorizations counts of one account,
-- over the few rows still pending (partial indexes: rows leave them when
-- they move on).
CREATE INDEX idx_orders_account_unfinished ON orders(account_id, expires)
    WHERE status IN ('pending', 'ready');
CREATE INDEX idx_authz_account_pending ON authorizations(account_id, expires)
    WHERE status = 'pending';
