-- The certificate profile an order asked for (ACME profiles extension).
ALTER TABLE orders ADD COLUMN profile TEXT;
