-- RFC 9773 (ARI). The certificate a new order replaces: the ARI
-- certificate identifier the client sent (echoed in the order) and the
-- certificate row it names.
ALTER TABLE orders ADD COLUMN replaces TEXT;
ALTER TABLE orders ADD COLUMN replaces_certificate TEXT;

-- A certificate claimed by the order that replaces it, at finalize. The
-- primary key makes the claim atomic: of two orders replacing one
-- certificate, one inserts and the other is alreadyReplaced. The claim is
-- dropped when the order fails.
CREATE TABLE replacements (
    certificate_id TEXT PRIMARY KEY NOT NULL REFERENCES certificates (id),
    order_id TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX replacements_order ON replacements (order_id);

-- Certificates an operator asked to be renewed at once
-- (akamu-cli admin renew-early): their ARI window lies in the past.
CREATE TABLE renewal_marks (
    certificate_id TEXT PRIMARY KEY NOT NULL REFERENCES certificates (id),
    marked_at BIGINT NOT NULL,
    explanation_url TEXT
);
