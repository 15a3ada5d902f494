DROP INDEX star_orders_due;
DROP TABLE star_orders;
