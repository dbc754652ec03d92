-- PostgreSQL's migration of this number leaves lines room on their pages for a pass's
-- updates. SQLite updates a row in place in its B-tree page, so it has nothing to set.
SELECT 1;
