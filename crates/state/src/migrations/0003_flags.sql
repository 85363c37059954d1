-- Schema 3: feature flags. The current definitions (Unleash's JSON, kept
-- verbatim: the daemon owns their meaning), one revision number for the
-- whole set that only goes up, and an audit entry per flag or segment a
-- change touched.

CREATE TABLE flags (
    name          TEXT    NOT NULL PRIMARY KEY,
    position      INTEGER NOT NULL,  -- order in the document, from 0
    definition    TEXT    NOT NULL,  -- one Unleash feature, JSON
    revision      INTEGER NOT NULL,  -- the revision that last changed it
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE flag_segments (
    id         INTEGER NOT NULL PRIMARY KEY,
    definition TEXT    NOT NULL  -- one Unleash segment, JSON
) STRICT;

-- One row: the revision of the whole set. Kept apart from the audit so a
-- revision survives any pruning of the audit a later schema may add.
CREATE TABLE flag_revision (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
) STRICT;
INSERT INTO flag_revision (id, revision) VALUES (1, 0);

CREATE TABLE flag_audit (
    -- AUTOINCREMENT for the reason given at deploys.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    revision    INTEGER NOT NULL,
    subject     TEXT    NOT NULL,  -- 'flag' or 'segment'
    name        TEXT    NOT NULL,  -- the flag's name or the segment's id
    action      TEXT    NOT NULL,  -- set, on, off, delete, import, ...
    who         TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    before_json TEXT,              -- NULL: it did not exist
    after_json  TEXT               -- NULL: it was removed
) STRICT;

-- History is read per flag, newest first.
CREATE INDEX flag_audit_by_name ON flag_audit (subject, name, id);
