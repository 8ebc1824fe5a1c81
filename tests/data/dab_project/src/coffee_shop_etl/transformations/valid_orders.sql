-- Orders fit for reporting: a known product and a positive quantity.
CREATE OR REFRESH MATERIALIZED VIEW valid_orders (
  CONSTRAINT known_product EXPECT (product_name IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT is_sale EXPECT (quantity > 0) ON VIOLATION DROP ROW
)
COMMENT 'Orders with a known product and a positive quantity'
AS SELECT * FROM orders_enriched;
