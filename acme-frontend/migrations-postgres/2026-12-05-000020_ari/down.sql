DROP TABLE renewal_marks;
DROP INDEX replacements_order;
DROP TABLE replacements;
ALTER TABLE orders DROP COLUMN replaces_certificate;
ALTER TABLE orders DROP COLUMN replaces;
