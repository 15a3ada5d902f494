ALTER TABLE authorizations DROP COLUMN statement;
