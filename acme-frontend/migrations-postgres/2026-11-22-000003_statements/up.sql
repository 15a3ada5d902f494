-- The validator's signed statement for a valid authorization (JSON); the
-- signer requires one per name before it issues.
ALTER TABLE authorizations ADD COLUMN statement TEXT;
