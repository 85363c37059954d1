-- Schema 1: services, their versions and targets, and pauses.
-- STRICT so a wrong type is an error at write time, not a surprise at read time.

CREATE TABLE services (
    name          TEXT    NOT NULL PRIMARY KEY,
    hosts         TEXT    NOT NULL,  -- JSON array of strings; [] = catch-all
    path_prefix   TEXT    NOT NULL,
    options       TEXT    NOT NULL,  -- JSON object; new fields need serde defaults, not a migration
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- 'candidate' is reserved for rollouts; put_service manages only 'stable'.
CREATE TABLE versions (
    service         TEXT    NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('stable', 'candidate')),
    label           TEXT    NOT NULL,
    activated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (service, role)
) STRICT;

CREATE TABLE targets (
    service  TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    position INTEGER NOT NULL,
    address  TEXT    NOT NULL,
    PRIMARY KEY (service, role, position),
    FOREIGN KEY (service, role) REFERENCES versions (service, role) ON DELETE CASCADE
) STRICT;

CREATE TABLE pauses (
    service  TEXT    NOT NULL PRIMARY KEY REFERENCES services (name) ON DELETE CASCADE,
    max_ms   INTEGER NOT NULL,
    since_ms INTEGER NOT NULL
) STRICT;
