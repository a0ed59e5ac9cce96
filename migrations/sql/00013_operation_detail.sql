-- +goose Up
-- The account behind an operation's error and behind each step's (a host's
-- own message, with its paths), for admins; the error stays in the user's
-- words (operation.step_failed, operation.rewound and operation.failed's
-- detail). Events before it carry none, so nothing needs rebuilding.
ALTER TABLE operations ADD COLUMN detail text;
ALTER TABLE operation_steps ADD COLUMN detail text;

-- +goose Down
ALTER TABLE operation_steps DROP COLUMN detail;
ALTER TABLE operations DROP COLUMN detail;
