DROP TABLE current_crl;
DROP TABLE leases;
DROP INDEX idx_used_nonces_expires;
DROP TABLE used_nonces;
DROP TABLE fleet_secrets;
