DROP INDEX IF EXISTS idx_certs_order;
DROP INDEX IF EXISTS idx_authz_expires;
DROP INDEX IF EXISTS idx_orders_expires;
