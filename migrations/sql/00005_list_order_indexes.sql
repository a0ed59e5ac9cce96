-- +goose Up
-- Lists page by (created_at, id); these indexes let a page read just its rows.
CREATE INDEX servers_page ON servers (created_at, id);
CREATE INDEX flavors_page ON flavors (created_at, id);
CREATE INDEX images_page ON images (created_at, id);
CREATE INDEX operations_page ON operations (created_at, id);
CREATE INDEX server_groups_page ON server_groups (created_at, id);
CREATE INDEX host_aggregates_page ON host_aggregates (created_at, id);

-- +goose Down
DROP INDEX servers_page, flavors_page, images_page, operations_page, server_groups_page, host_aggregates_page;
