-- The order search lists a client's orders newest first: with the id in the index the
-- first page is read straight off it instead of sorting every order of the client.
CREATE INDEX orders_newest ON orders (client_id, id);
-- The same within a status; it also serves every lookup by (client, status).
CREATE INDEX orders_status_newest ON orders (client_id, status, id);
DROP INDEX orders_status;
