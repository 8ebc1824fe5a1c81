-- Databricks-only: AUTO CDC in SQL (Apache Spark 4.2's SQL has no AUTO CDC)
-- The current product catalogue (SCD type 1): the newest change per product wins,
-- late-arriving older changes are ignored, DELETE rows remove the product.
CREATE OR REFRESH STREAMING TABLE products
COMMENT 'The current product catalogue (SCD type 1)';

CREATE FLOW products_cdc AS AUTO CDC INTO products
FROM STREAM(products_changes)
KEYS (product_id)
APPLY AS DELETE WHEN operation = 'DELETE'
SEQUENCE BY sequence_num
COLUMNS * EXCEPT (operation, sequence_num)
STORED AS SCD TYPE 1;
