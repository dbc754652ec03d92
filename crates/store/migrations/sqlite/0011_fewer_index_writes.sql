-- Indexes no read uses cost a write on every row. Lines by SKU and allocations by stock
-- key were indexed for lookups the OMS does not make (open demand is read by order, live
-- allocations by shipment, the consistency check scans whole tables), and each added a
-- write at a random place per line: with three lines an order, six of the ~20 pages a new
-- order dirtied in SQLite's log were these two indexes.
DROP INDEX order_lines_sku;
DROP INDEX allocations_key;


-- Stock rows are small and always found by client and SKU: kept in their key's B-tree
-- (`WITHOUT ROWID`) ordered by SKU first, the buckets of one SKU at every warehouse share
-- a page, so a movement from one bucket to another rewrites one page, not two table pages
-- found through an index, and a read by SKU needs no second index (the old `stock_sku`).
CREATE TABLE stock_by_sku (
    client_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    sku_id BIGINT NOT NULL,
    bucket TEXT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty >= 0),
    PRIMARY KEY (client_id, sku_id, warehouse_id, bucket),
    FOREIGN KEY (client_id, warehouse_id) REFERENCES client_warehouses (client_id, warehouse_id),
    FOREIGN KEY (sku_id, client_id) REFERENCES skus (id, client_id)
) WITHOUT ROWID;
INSERT INTO stock_by_sku (client_id, warehouse_id, sku_id, bucket, qty)
    SELECT client_id, warehouse_id, sku_id, bucket, qty FROM stock;
DROP TABLE stock;
ALTER TABLE stock_by_sku RENAME TO stock;
