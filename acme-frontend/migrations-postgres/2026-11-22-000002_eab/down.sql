DROP TABLE eab_keys;
