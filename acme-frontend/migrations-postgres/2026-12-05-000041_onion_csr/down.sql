ALTER TABLE challenges DROP COLUMN response;
