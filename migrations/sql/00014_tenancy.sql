-- +goose Up
-- Tenancy: what each project owns, and who may act in it. The owner of a
-- resource is the project its commits name (envelope "project"); rows made
-- before tenancy have none and only cloud admins see them.
ALTER TABLE servers ADD COLUMN project_id uuid;
ALTER TABLE keypairs ADD COLUMN project_id uuid;
ALTER TABLE images ADD COLUMN project_id uuid;
ALTER TABLE server_groups ADD COLUMN project_id uuid;
ALTER TABLE operations ADD COLUMN project_id uuid;
ALTER TABLE events ADD COLUMN project_id text;
CREATE INDEX servers_project_page ON servers (project_id, created_at, id);
CREATE INDEX keypairs_project_page ON keypairs (project_id, created_at, id);
CREATE INDEX images_project ON images (project_id);
CREATE INDEX server_groups_project ON server_groups (project_id);
CREATE INDEX operations_project_page ON operations (project_id, created_at, id);
CREATE INDEX events_project ON events (project_id, seq);
-- The servers of a project with an operation under way, counted at each
-- create and action (the bound of concurrent operations per project).
CREATE INDEX servers_busy_project ON servers (project_id) WHERE task IS NOT NULL;

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    seq         bigint NOT NULL
);
CREATE INDEX projects_page ON projects (created_at, id);

CREATE TABLE users (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX users_page ON users (created_at, id);

CREATE TABLE role_assignments (
    user_id    uuid NOT NULL,
    project_id uuid NOT NULL,
    role       text NOT NULL,
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, project_id)
);
CREATE INDEX role_assignments_project ON role_assignments (project_id, user_id);

-- Tokens as listed to their users: never the secret, nor its hash.
CREATE TABLE tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    project_id uuid NOT NULL,
    name       text NOT NULL,
    read_only  boolean NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    seq        bigint NOT NULL
);
CREATE INDEX tokens_user_page ON tokens (user_id, created_at, id);

-- +goose Down
DROP TABLE tokens;
DROP TABLE role_assignments;
DROP TABLE users;
DROP TABLE projects;
DROP INDEX servers_busy_project;
DROP INDEX events_project;
ALTER TABLE events DROP COLUMN project_id;
ALTER TABLE operations DROP COLUMN project_id;
ALTER TABLE server_groups DROP COLUMN project_id;
ALTER TABLE images DROP COLUMN project_id;
ALTER TABLE keypairs DROP COLUMN project_id;
ALTER TABLE servers DROP COLUMN project_id;
