-- Indexes no read uses cost a write on every row. Lines by SKU and allocations by stock
-- key were indexed for lookups the OMS does not make (open demand is read by order, live
-- allocations by shipment, the consistency check scans whole tables), and each added a
-- write at a random place per line: with three lines an order, six of the ~20 pages a new
-- order dirtied in SQLite's log were these two indexes.
DROP INDEX order_lines_sku;
DROP INDEX allocations_key;

