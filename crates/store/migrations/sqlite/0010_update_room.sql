-- PostgreSQL's migration of this number leaves room on the pages of often-updated tables.
-- SQLite updates a row in place in its B-tree page, so it has nothing to set.
SELECT 1;
