DROP TABLE certificates;
DROP TABLE challenges;
DROP TABLE order_authorizations;
DROP TABLE authorizations;
DROP TABLE orders;
DROP TABLE accounts;
