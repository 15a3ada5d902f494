DROP TABLE persist_hashes;
