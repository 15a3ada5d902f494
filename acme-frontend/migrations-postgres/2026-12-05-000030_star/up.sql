-- RFC 8739 (STAR). One row per auto-renewal order: its terms, the CSR
-- kept for the reissues (orders.csr is cleared after issuance), and the
-- durable schedule: when the next certificate is due (NULL: none is,
-- before the first issuance, after the last, after a cancel or a
-- refusal), and the nominal start of a reissue in flight (so a retry
-- after a crash asks the signer for the same certificate).
CREATE TABLE star_orders (
    order_id TEXT PRIMARY KEY NOT NULL REFERENCES orders (id),
    start_date BIGINT,
    end_date BIGINT NOT NULL,
    lifetime BIGINT NOT NULL,
    lifetime_adjust BIGINT NOT NULL,
    allow_certificate_get BOOLEAN NOT NULL,
    csr BYTEA,
    next_issue BIGINT,
    reissue_start BIGINT,
    canceled_at BIGINT
);
CREATE INDEX star_orders_due ON star_orders (next_issue) WHERE next_issue IS NOT NULL;
