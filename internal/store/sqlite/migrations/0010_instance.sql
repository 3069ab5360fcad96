-- 0010: the id of the fusebox this database belongs to, made once when the
-- database is created (or first opened by a binary with this migration)
-- and shared by every replica on it. Every container fusebox creates
-- carries it (label fusebox.instance), so that one fusebox never removes
-- the containers of another on the same Docker hosts.

CREATE TABLE instance (
    id TEXT NOT NULL PRIMARY KEY
);
INSERT INTO instance (id) VALUES (lower(hex(randomblob(8))));
