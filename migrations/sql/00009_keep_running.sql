-- +goose Up
-- A server found stopped behind Keel's back is started again unless its
-- keep_running is false (server.created's keep_running; absent means true).
ALTER TABLE servers ADD COLUMN keep_running boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE servers DROP COLUMN keep_running;
