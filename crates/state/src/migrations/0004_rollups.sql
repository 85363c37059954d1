-- Schema 4: minute rollups of each (app, version)'s traffic, kept 35 days so
-- that numbers over longer spans than the daemon's memory survive restarts.
--
-- A row is what one daemon counted for one version in one minute; a restart
-- inside a minute leaves two rows for it, and readers add them up, so no
-- write ever has to merge with an earlier one. Minutes without requests have
-- no row.

CREATE TABLE rollups (
    app       TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    minute_ms INTEGER NOT NULL,  -- start of the minute, unix epoch millis
    until_ms  INTEGER NOT NULL,  -- when the counts were read
    requests  INTEGER NOT NULL,
    errors    INTEGER NOT NULL,  -- 5xx and upstream failures
    latency   BLOB    NOT NULL   -- fixed latency buckets, the daemon's encoding
) STRICT;

-- Read per app over a span of minutes.
CREATE INDEX rollups_by_app ON rollups (app, minute_ms);
-- Pruned by age across every app.
CREATE INDEX rollups_by_minute ON rollups (minute_ms);
