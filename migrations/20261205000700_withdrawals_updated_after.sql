-- GET /v1/withdrawals?updated_after=: a website polling for changes asks for the few rows
-- changed since its last look; without this index each poll would read the whole table.
CREATE INDEX withdrawals_updated_at_idx ON withdrawals (updated_at);
