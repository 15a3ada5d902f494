DROP INDEX IF EXISTS idx_authz_account_pending;
DROP INDEX IF EXISTS idx_orders_account_unfinished;
DROP TABLE IF EXISTS paused_identifiers;
DROP INDEX IF EXISTS idx_rate_limit_buckets_tat;
DROP TABLE IF EXISTS rate_limit_buckets;
