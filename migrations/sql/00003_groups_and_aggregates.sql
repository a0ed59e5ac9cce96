-- +goose Up
CREATE TABLE server_groups (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    policy       text NOT NULL,
    max_per_host integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    seq          bigint NOT NULL
);
CREATE INDEX server_groups_name ON server_groups (name);

CREATE TABLE server_group_members (
    group_id  uuid NOT NULL,
    server_id uuid NOT NULL,
    host      text NOT NULL,
    PRIMARY KEY (group_id, server_id)
);

CREATE TABLE host_aggregates (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    metadata   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX host_aggregates_name ON host_aggregates (name);

CREATE TABLE host_aggregate_hosts (
    aggregate_id uuid NOT NULL,
    host         text NOT NULL,
    PRIMARY KEY (aggregate_id, host)
);

ALTER TABLE flavors ADD COLUMN extra_specs jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE flavors DROP COLUMN extra_specs;
DROP TABLE host_aggregate_hosts, host_aggregates, server_group_members, server_groups;
