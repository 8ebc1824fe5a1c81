CREATE MATERIALIZED VIEW order_count AS SELECT count(*) AS n FROM orders;
