-- +goose Up
-- The audit trail: one row per record of the KEEL_AUDIT stream, in stream
-- order (seq is the stream sequence), each chained to the one before it:
-- hash = sha256(prev_hash || record || seq as 8 bytes big-endian). record
-- holds the bytes exactly as published (bytea, not jsonb: jsonb reorders
-- keys and would change what was hashed). id, at, project_id, operation and
-- outcome are copies of the record's fields for filters; `keel audit verify`
-- checks them against the record. Keel inserts rows and never updates or
-- deletes one.
CREATE TABLE audit_records (
    seq        bigint PRIMARY KEY,
    id         uuid NOT NULL,
    at         timestamptz NOT NULL,
    project_id text NOT NULL DEFAULT '',
    operation  text NOT NULL DEFAULT '',
    outcome    text NOT NULL,
    record     bytea NOT NULL,
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL
);
CREATE INDEX audit_records_at ON audit_records (at, seq);
CREATE INDEX audit_records_project ON audit_records (project_id, seq);

-- +goose Down
DROP TABLE audit_records;
