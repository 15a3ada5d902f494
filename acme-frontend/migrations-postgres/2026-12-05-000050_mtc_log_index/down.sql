ALTER TABLE certificates DROP COLUMN mtc_log_index;
