-- The certificate's index in the signer's transparency log (issue 16; the
-- reference's column): NULL for certificates signed while the log was off.
ALTER TABLE certificates ADD COLUMN mtc_log_index BIGINT;
