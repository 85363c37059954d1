-- Schema 2: apps, their releases, their deploy history and their processes.
--
-- No foreign keys to apps: a first deploy records its start (and stages its
-- release) before the app has a row, and the order in which the daemon writes
-- these is its business. No CHECKs on the vocabulary columns (kind, outcome,
-- state) either: adding a value to a CHECK means rebuilding the table.
-- Columns avoid SQL keywords (release, index) so no statement needs quoting.

CREATE TABLE apps (
    name               TEXT    NOT NULL PRIMARY KEY,
    config             TEXT    NOT NULL,  -- JSON, kept verbatim
    current_release_id TEXT,
    updated_at_ms      INTEGER NOT NULL
) STRICT;

CREATE TABLE releases (
    app           TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    revision      TEXT    NOT NULL,
    config        TEXT    NOT NULL,  -- JSON, kept verbatim
    PRIMARY KEY (app, id)
) STRICT;

CREATE TABLE deploys (
    -- AUTOINCREMENT: without it SQLite hands the largest id out again once
    -- its row is deleted, and history entries must keep their numbers.
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    app                 TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    release_id          TEXT    NOT NULL,
    previous_release_id TEXT,
    started_at_ms       INTEGER NOT NULL,
    finished_at_ms      INTEGER,
    user                TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    outcome             TEXT    NOT NULL,
    reason              TEXT,
    stages              TEXT    NOT NULL  -- JSON array, kept verbatim
) STRICT;

-- History is read per app, newest first, and grows without bound.
CREATE INDEX deploys_by_app ON deploys (app, id);
-- Read on every daemon start; almost no row qualifies.
CREATE INDEX deploys_running ON deploys (id) WHERE outcome = 'running';

CREATE TABLE processes (
    marker        TEXT    NOT NULL PRIMARY KEY,
    app           TEXT    NOT NULL,
    release_id    TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    instance      INTEGER NOT NULL,
    pid           INTEGER,
    start_time    INTEGER,
    port          INTEGER,
    started_at_ms INTEGER NOT NULL,
    restarts      INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    stop_after_ms INTEGER,
    log_file      TEXT    NOT NULL
) STRICT;

CREATE INDEX processes_by_slot ON processes (app, release_id, role, instance);
