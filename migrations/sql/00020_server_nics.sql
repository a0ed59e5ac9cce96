-- +goose Up
-- A server's NICs (issue 10): the ports the create saga made on the
-- networks it asked for, as server.nics_set recorded them:
-- [{port_id, network_id, mac, ips}], eth0 first. Empty for a server without
-- networks, and until the saga's network step is done.
ALTER TABLE servers ADD COLUMN nics jsonb NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE servers DROP COLUMN nics;
