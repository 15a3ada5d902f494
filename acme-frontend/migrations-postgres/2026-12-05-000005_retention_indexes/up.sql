-- Indexes for the retention clean-up (store::retention): expired orders and
-- authorizations are found by `expires`, and an order is kept while a
-- certificate row refers to it.
CREATE INDEX IF NOT EXISTS idx_orders_expires ON orders(expires);
CREATE INDEX IF NOT EXISTS idx_authz_expires ON authorizations(expires);
CREATE INDEX IF NOT EXISTS idx_certs_order ON certificates(order_id);
