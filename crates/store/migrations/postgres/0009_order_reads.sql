-- A batch reads the lines and events of its orders by `client_id = ? AND order_id IN (…)`.
-- With only (client_id, …) and (order_id) indexes, SQLite without statistics walks every
-- line or event of the client; an index on both columns serves the lookup directly, and
-- takes the place of the order_id-only one (lines keep (order_id, line_id) for lookups by
-- order alone).
CREATE INDEX order_lines_client_order ON order_lines (client_id, order_id);
DROP INDEX order_lines_order;
CREATE INDEX outbox_client_order ON outbox (client_id, order_id);
DROP INDEX outbox_order;
