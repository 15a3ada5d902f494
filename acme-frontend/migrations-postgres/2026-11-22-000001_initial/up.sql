-- Akāmu frontend state. Times are Unix seconds. Status columns hold the
-- RFC 8555 status names.

CREATE TABLE accounts (
    id              TEXT    PRIMARY KEY NOT NULL,
    status          TEXT    NOT NULL,
    contact         TEXT    NOT NULL,            -- JSON array of mailto: URIs
    jwk             TEXT    NOT NULL,            -- canonical public JWK JSON
    jwk_thumbprint  TEXT    NOT NULL UNIQUE,     -- RFC 7638, base64url
    tos_agreed      BOOLEAN NOT NULL,
    created         BIGINT  NOT NULL,
    updated         BIGINT  NOT NULL
);

CREATE TABLE orders (
    id              TEXT    PRIMARY KEY NOT NULL,
    account_id      TEXT    NOT NULL REFERENCES accounts(id),
    status          TEXT    NOT NULL,
    expires         BIGINT  NOT NULL,
    identifiers     TEXT    NOT NULL,            -- JSON [{type,value}]
    not_before      BIGINT,
    not_after       BIGINT,
    error           TEXT,                        -- problem JSON when invalid
    csr             BYTEA,                        -- stored at finalize, until issued
    certificate_id  TEXT,
    created         BIGINT  NOT NULL,
    updated         BIGINT  NOT NULL
);
CREATE INDEX idx_orders_account ON orders(account_id, created);
CREATE INDEX idx_orders_status ON orders(status);

CREATE TABLE authorizations (
    id               TEXT    PRIMARY KEY NOT NULL,
    account_id       TEXT    NOT NULL REFERENCES accounts(id),
    status           TEXT    NOT NULL,
    identifier_type  TEXT    NOT NULL,
    identifier_value TEXT    NOT NULL,           -- without the wildcard label
    wildcard         BOOLEAN NOT NULL,
    token            TEXT    NOT NULL,
    expires          BIGINT  NOT NULL,
    error            TEXT,
    created          BIGINT  NOT NULL,
    updated          BIGINT  NOT NULL
);
CREATE INDEX idx_authz_account_ident ON authorizations(account_id, identifier_type, identifier_value, status);

-- An order's authorizations (a valid authorization may serve several orders).
CREATE TABLE order_authorizations (
    order_id   TEXT    NOT NULL REFERENCES orders(id),
    authz_id   TEXT    NOT NULL REFERENCES authorizations(id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (order_id, authz_id)
);
CREATE INDEX idx_order_authz_authz ON order_authorizations(authz_id);

CREATE TABLE challenges (
    id                TEXT    PRIMARY KEY NOT NULL,  -- authz id + '/' + type
    authz_id          TEXT    NOT NULL REFERENCES authorizations(id),
    type              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    validated         BIGINT,
    error             TEXT,
    validation_record TEXT,                          -- JSON
    created           BIGINT  NOT NULL,
    updated           BIGINT  NOT NULL
);
CREATE INDEX idx_challenges_authz ON challenges(authz_id);
CREATE INDEX idx_challenges_status ON challenges(status);

CREATE TABLE certificates (
    id                TEXT    PRIMARY KEY NOT NULL,
    order_id          TEXT    NOT NULL REFERENCES orders(id),
    account_id        TEXT    NOT NULL REFERENCES accounts(id),
    serial_number     TEXT    NOT NULL UNIQUE,       -- lower-case hex
    status            TEXT    NOT NULL,
    der               BYTEA    NOT NULL,              -- the leaf
    pem               TEXT    NOT NULL,              -- the served chain
    not_before        BIGINT  NOT NULL,
    not_after         BIGINT  NOT NULL,
    revoked_at        BIGINT,
    revocation_reason INTEGER,
    created           BIGINT  NOT NULL
);
CREATE INDEX idx_certs_account ON certificates(account_id);
CREATE INDEX idx_certs_status ON certificates(status);
