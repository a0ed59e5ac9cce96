-- +goose Up
-- Back-pressure counts the servers with a task in progress (work accepted
-- and not finished) several times a second.
CREATE INDEX servers_busy ON servers (id) WHERE task IS NOT NULL;

-- +goose Down
DROP INDEX servers_busy;
