-- Gold: sales per product category.
CREATE OR REFRESH MATERIALIZED VIEW sales_by_category
COMMENT 'Gold: orders, units and revenue per product category'
AS SELECT
  category,
  count(*) AS orders,
  sum(quantity) AS units,
  sum(revenue) AS revenue
FROM valid_orders
GROUP BY category;
