-- +goose Up
-- Keypairs: a user's SSH public keys, by unique name. Servers show the name
-- of the keypair they were created with; the key itself stays in the log.
CREATE TABLE keypairs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    type        text NOT NULL,
    public_key  text NOT NULL,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL,
    seq         bigint NOT NULL
);
CREATE INDEX keypairs_name ON keypairs (name);
CREATE INDEX keypairs_page ON keypairs (created_at, id);
ALTER TABLE servers ADD COLUMN key_name text;

-- +goose Down
ALTER TABLE servers DROP COLUMN key_name;
DROP TABLE keypairs;
