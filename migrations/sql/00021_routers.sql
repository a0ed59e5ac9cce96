-- +goose Up
-- Routers and floating IPs (issue 10), as the API lists and shows them. The
-- aggregates decide; these rows only answer reads. The sweeps read them too:
-- the quota sweep (a router or floating IP reservation with no row), the
-- address sweep (an address a floating IP holds is not a port's leftover)
-- and the floating IP sweep (associations with a port that is gone).
CREATE TABLE routers (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL,
    name        text NOT NULL,
    -- {network_id, subnet_id, cidr, port_id, ip, snat}, null without one
    gateway     jsonb,
    -- [{subnet_id, cidr, port_id, ip}], in the order they were added
    interfaces  jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL,
    seq         bigint NOT NULL
);
CREATE INDEX routers_page ON routers (created_at, id);
CREATE INDEX routers_project ON routers (project_id, name);

CREATE TABLE floating_ips (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL,
    network_id  uuid NOT NULL,
    subnet_id   uuid NOT NULL,
    ip          text NOT NULL,
    port_id     uuid,
    fixed_ip    text,
    router_id   uuid,
    created_at  timestamptz NOT NULL,
    seq         bigint NOT NULL
);
CREATE INDEX floating_ips_page ON floating_ips (created_at, id);
CREATE INDEX floating_ips_project ON floating_ips (project_id);
CREATE INDEX floating_ips_port ON floating_ips (port_id) WHERE port_id IS NOT NULL;

-- +goose Down
DROP TABLE floating_ips;
DROP TABLE routers;
