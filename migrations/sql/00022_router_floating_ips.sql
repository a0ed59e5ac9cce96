-- +goose Up
-- The floating IPs each router lists as translated (router.floating_ip_attached
-- until router.floating_ip_detached), with the commit that attached each. The
-- floating IP sweep reads them: a router that lists a floating IP not
-- associated through it (an association or a disassociation cut short between
-- its two commits) refuses to lose its gateway or interface until it lets go.
CREATE TABLE router_floating_ips (
    router_id      uuid NOT NULL,
    floating_ip_id uuid NOT NULL,
    attached_at    timestamptz NOT NULL,
    seq            bigint NOT NULL,
    PRIMARY KEY (router_id, floating_ip_id)
);
CREATE INDEX router_floating_ips_attached ON router_floating_ips (attached_at);

-- +goose Down
DROP TABLE router_floating_ips;
