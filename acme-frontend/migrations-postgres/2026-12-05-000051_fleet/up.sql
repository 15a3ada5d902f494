-- Several front ends on one database (issue 17).
--
-- The nonce key: a random secret every front end reads at start, so that a
-- nonce made by one is recognised by all (nonces carry a MAC under it and
-- cost no write when handed out).
CREATE TABLE fleet_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Redeemed nonces: the primary key makes a nonce's second use fail across
-- processes; a row is deleted once its nonce is too old to be accepted.
CREATE TABLE used_nonces (
    nonce   BYTEA   NOT NULL PRIMARY KEY,
    expires BIGINT NOT NULL
);
CREATE INDEX idx_used_nonces_expires ON used_nonces (expires);

-- Leases: the front end named by `holder` runs the background jobs until
-- `expires_ms` (Unix milliseconds), renewing well before; another takes the
-- row over only once it expired.
CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- The CRL every front end serves: made by the lease holder, read by all.
-- One row (id = 1); `mark_count` and `mark_latest` are the revocation state
-- it reflects (store::certificates::revocation_mark).
CREATE TABLE current_crl (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    der         BYTEA    NOT NULL,
    number      BIGINT  NOT NULL,
    this_update BIGINT  NOT NULL,
    next_update BIGINT  NOT NULL,
    mark_count  BIGINT  NOT NULL,
    mark_latest BIGINT  NOT NULL
);
