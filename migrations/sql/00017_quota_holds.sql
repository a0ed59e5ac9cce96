-- +goose Up
-- What each project's quota reservations hold, one row per reservation key
-- (a server id): the quota sweep looks here for reservations whose server
-- never came to be. The project aggregate itself keeps only counters.
CREATE TABLE quota_holds (
    project_id  uuid NOT NULL,
    key         text NOT NULL,
    amounts     jsonb NOT NULL,
    reserved_at timestamptz NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (project_id, key)
);
CREATE INDEX quota_holds_age ON quota_holds (reserved_at);

-- +goose Down
DROP TABLE quota_holds;
