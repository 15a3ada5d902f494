ALTER TABLE authorizations DROP COLUMN subdomain_auth_allowed;
