-- +goose Up
ALTER TABLE hosts ADD COLUMN maintenance_reason text;

-- +goose Down
ALTER TABLE hosts DROP COLUMN maintenance_reason;
