-- +goose Up
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    version    integer NOT NULL,
    seq        bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE flavors (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    vcpus      integer NOT NULL,
    ram_mib    integer NOT NULL,
    disk_gib   integer NOT NULL,
    created_at timestamptz NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX flavors_name ON flavors (name);

CREATE TABLE images (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    disk_format  text NOT NULL,
    min_disk_gib integer NOT NULL,
    min_ram_mib  integer NOT NULL,
    status       text NOT NULL,
    size_bytes   bigint,
    sha256       text,
    object       text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    seq          bigint NOT NULL
);
CREATE INDEX images_name ON images (name);

CREATE TABLE servers (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    flavor_id    uuid NOT NULL,
    flavor       jsonb NOT NULL,
    image_id     uuid NOT NULL,
    host         text,
    desired      text NOT NULL,
    power        text NOT NULL,
    task         text,
    status       text NOT NULL,
    reason       text,
    operation_id uuid,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    seq          bigint NOT NULL
);
CREATE INDEX servers_name ON servers (name);
CREATE INDEX servers_host ON servers (host);
CREATE INDEX servers_status ON servers (status);

CREATE TABLE operations (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    resource_type text NOT NULL,
    resource_id   uuid NOT NULL,
    status        text NOT NULL,
    current_step  text,
    deadline      timestamptz,
    error         text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    seq           bigint NOT NULL
);
CREATE INDEX operations_resource ON operations (resource_id);
CREATE INDEX operations_running ON operations (deadline) WHERE status IN ('pending', 'running', 'compensating');

CREATE TABLE operation_steps (
    operation_id uuid NOT NULL,
    idx          integer NOT NULL,
    name         text NOT NULL,
    status       text NOT NULL,
    timeout_ms   bigint NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    deadline     timestamptz,
    error        text,
    PRIMARY KEY (operation_id, idx)
);

CREATE TABLE hosts (
    name          text PRIMARY KEY,
    id            uuid NOT NULL,
    driver        text NOT NULL,
    vcpus         integer NOT NULL,
    ram_mib       integer NOT NULL,
    disk_gib      integer NOT NULL,
    registered_at timestamptz NOT NULL,
    seq           bigint NOT NULL
);

CREATE TABLE events (
    seq            bigint PRIMARY KEY,
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    version        bigint NOT NULL,
    command_id     text NOT NULL,
    types          text[] NOT NULL,
    envelope       jsonb NOT NULL,
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX events_aggregate ON events (aggregate_type, aggregate_id, seq);
CREATE INDEX events_types ON events USING gin (types);

-- +goose Down
DROP TABLE events, hosts, operation_steps, operations, servers, images, flavors, projection_checkpoints;
