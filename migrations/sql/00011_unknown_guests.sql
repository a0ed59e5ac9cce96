-- +goose Up
-- The guests a host runs that Keel did not create (host.unknown_guests_observed).
ALTER TABLE hosts ADD COLUMN unknown_guests text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE hosts DROP COLUMN unknown_guests;
