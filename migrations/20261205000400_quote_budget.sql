-- CoinsPaid allows 30 calls a minute per IP address to /v2/exchange/calculate, and replicas
-- usually leave through one address: the budget is kept here, shared by all of them. `calls`
-- holds the times of the calls in the last minute; taking one is a single-row UPDATE whose
-- condition is re-checked on the newest row version when another replica took one first.
CREATE TABLE provider_call_budgets (
    endpoint TEXT PRIMARY KEY,
    calls TIMESTAMPTZ[] NOT NULL DEFAULT '{}'
);
INSERT INTO provider_call_budgets (endpoint) VALUES ('/v2/exchange/calculate');

-- CoinsPaid's latest estimate per pair and amount band (amounts within a factor of two), so a
-- quote can be answered from a recent estimate when the budget is spent. Bounded by pairs x
-- bands; each row is replaced by the next estimate.
CREATE TABLE quote_estimates (
    currency TEXT NOT NULL,
    convert_to TEXT NOT NULL,
    band INTEGER NOT NULL,
    sender_amount NUMERIC NOT NULL CHECK (sender_amount > 0),
    receiver_amount NUMERIC NOT NULL,
    fee_amount NUMERIC,
    fee_currency TEXT,
    price NUMERIC,
    ts_fixed BIGINT,
    ts_release BIGINT,
    fix_period BIGINT,
    estimated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, convert_to, band)
);
