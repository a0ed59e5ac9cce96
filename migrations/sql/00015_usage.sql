-- +goose Up
-- Usage (billing) from the event log: the static facts of each server as
-- server.created told them, and one row per interval in which a server was
-- running. Times are the events' own, so a rebuild from the log gives the
-- same rows. Nothing here is deleted when a server is: a bill for a past
-- month must still find it.
CREATE TABLE usage_servers (
    id          uuid PRIMARY KEY,
    project_id  uuid,
    name        text NOT NULL,
    flavor_id   text NOT NULL,
    flavor_name text NOT NULL,
    vcpus       integer NOT NULL,
    ram_mib     integer NOT NULL,
    created_at  timestamptz NOT NULL,
    seq         bigint NOT NULL
);

-- An interval starts at the commit (start_seq, and the event's place in it,
-- start_idx) that put the server into RUNNING and ends (ended_at, end_seq)
-- at the one that took it out; ended_at is NULL while it runs. The flavor
-- is copied from usage_servers when the interval starts.
CREATE TABLE usage_intervals (
    resource_type text NOT NULL,
    resource_id   uuid NOT NULL,
    start_seq     bigint NOT NULL,
    start_idx     integer NOT NULL,
    project_id    uuid,
    flavor_id     text NOT NULL,
    flavor_name   text NOT NULL,
    vcpus         integer NOT NULL,
    ram_mib       integer NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    end_seq       bigint,
    PRIMARY KEY (resource_type, resource_id, start_seq, start_idx)
);
-- A project's usage over a window: the intervals that started before its end.
CREATE INDEX usage_intervals_project ON usage_intervals (project_id, started_at);
-- At most one open interval per resource; its end finds it by this.
CREATE UNIQUE INDEX usage_intervals_open ON usage_intervals (resource_type, resource_id) WHERE ended_at IS NULL;

-- +goose Down
DROP TABLE usage_intervals;
DROP TABLE usage_servers;
