-- +goose Up
-- The aggregate version of hosts and host aggregates, answered as ETag for
-- If-Match. The hosts and host_aggregates projections rebuild to fill it.
ALTER TABLE hosts ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE host_aggregates ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE host_aggregates DROP COLUMN version;
ALTER TABLE hosts DROP COLUMN version;
