-- RFC 9444: an authorization whose validation also covers the names below
-- its identifier (created by new-authz with `subdomainAuthAllowed` or for
-- a new-order identifier's `ancestorDomain`). Only dns-01 is offered for
-- it, and the validator's statement says when it covers subdomains.
ALTER TABLE authorizations ADD COLUMN subdomain_auth_allowed BOOLEAN NOT NULL DEFAULT FALSE;
