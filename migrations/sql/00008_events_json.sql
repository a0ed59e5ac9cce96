-- +goose Up
-- The events table keeps each commit's envelope as the log holds it: json
-- stores the text as it came (validated, not re-encoded), which is what the
-- history answers with, and a rebuild no longer spends most of its time
-- converting 100,000 envelopes to jsonb.
ALTER TABLE events ALTER COLUMN envelope TYPE json USING envelope::json;

-- +goose Down
ALTER TABLE events ALTER COLUMN envelope TYPE jsonb USING envelope::jsonb;
