-- Schema 5: the traffic report at the end of a deploy or rollback (the new
-- version against the same hour of the previous days), kept with it as
-- JSON, opaque to the store like `stages`. NULL for runs that failed, that
-- ended before this schema, or whose report could not be read.

ALTER TABLE deploys ADD COLUMN report TEXT;
