-- +goose Up
-- Networking (issue 10): networks, subnets, the addresses subnets hand out,
-- ports and security groups, as the API lists and shows them. The
-- aggregates decide; these rows only answer reads, and the address sweep
-- (sagas/monitors) reads subnet_addresses to find addresses no port holds.
CREATE TABLE networks (
    id               uuid PRIMARY KEY,
    project_id       uuid NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL,
    physical_network text,
    vlan             integer,
    external         boolean NOT NULL DEFAULT false,
    mtu              integer NOT NULL,
    created_at       timestamptz NOT NULL,
    seq              bigint NOT NULL
);
CREATE INDEX networks_page ON networks (created_at, id);
CREATE INDEX networks_project ON networks (project_id, name);

CREATE TABLE subnets (
    id         uuid PRIMARY KEY,
    network_id uuid NOT NULL,
    project_id uuid NOT NULL,
    name       text,
    cidr       text NOT NULL,
    gateway    text,
    dhcp       boolean NOT NULL,
    dns        jsonb NOT NULL DEFAULT '[]',
    pools      jsonb NOT NULL DEFAULT '[]',
    routes     jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX subnets_page ON subnets (created_at, id);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE INDEX subnets_project ON subnets (project_id, name);

-- One row per address a subnet has handed out, with the key (port id) it
-- was handed out to.
CREATE TABLE subnet_addresses (
    subnet_id    uuid NOT NULL,
    ip           text NOT NULL,
    key          text NOT NULL,
    allocated_at timestamptz NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (subnet_id, ip)
);
CREATE INDEX subnet_addresses_age ON subnet_addresses (allocated_at);

CREATE TABLE ports (
    id              uuid PRIMARY KEY,
    network_id      uuid NOT NULL,
    project_id      uuid NOT NULL,
    name            text,
    mac             text NOT NULL,
    fixed_ips       jsonb NOT NULL DEFAULT '[]',
    security_groups jsonb NOT NULL DEFAULT '[]',
    port_security   boolean NOT NULL,
    device_owner    text,
    device_id       text,
    host            text,
    created_at      timestamptz NOT NULL,
    seq             bigint NOT NULL
);
CREATE INDEX ports_page ON ports (created_at, id);
CREATE INDEX ports_network ON ports (network_id);
CREATE INDEX ports_project ON ports (project_id, name);
CREATE INDEX ports_groups ON ports USING gin (security_groups);

CREATE TABLE security_groups (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    is_default  boolean NOT NULL DEFAULT false,
    rules       jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL,
    seq         bigint NOT NULL
);
CREATE INDEX security_groups_page ON security_groups (created_at, id);
CREATE INDEX security_groups_project ON security_groups (project_id, name);

-- +goose Down
DROP TABLE security_groups;
DROP TABLE ports;
DROP TABLE subnet_addresses;
DROP TABLE subnets;
DROP TABLE networks;
