-- +goose Up
-- A server's blank data disks, by size (server.created's data_disks_gib).
ALTER TABLE servers ADD COLUMN data_disks_gib integer[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE servers DROP COLUMN data_disks_gib;
