ALTER TABLE orders DROP COLUMN profile;
