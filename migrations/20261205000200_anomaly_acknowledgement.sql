-- Operators acknowledge anomalies. Every anomaly recorded on a withdrawal counts up
-- `anomaly_seq`; an acknowledgement records the count it saw. An anomaly needs a person while
-- `anomaly_seq > anomaly_acknowledged_seq`, so one recorded after an acknowledgement (even
-- with the same text) is listed again. A counter under the row lock, not a timestamp: an
-- anomaly whose transaction began before an acknowledgement but wrote after it still counts.
ALTER TABLE withdrawals
    ADD COLUMN anomaly_seq              INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN anomaly_acknowledged_seq INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN anomaly_acknowledged_at  TIMESTAMPTZ,
    ADD COLUMN anomaly_acknowledged_by  TEXT;
UPDATE withdrawals SET anomaly_seq = 1 WHERE anomaly IS NOT NULL;

-- The stuck list finds unacknowledged anomalies on finished withdrawals too.
CREATE INDEX withdrawals_anomaly_open_idx ON withdrawals (id)
    WHERE anomaly_seq > anomaly_acknowledged_seq;

-- The writers in `transition.rs` count each anomaly themselves (a repeat of the same text is
-- a new one); this catches any other writer that changes the text without counting.
CREATE FUNCTION withdrawals_count_anomaly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.anomaly_seq := OLD.anomaly_seq + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER withdrawals_count_anomaly
    BEFORE UPDATE OF anomaly ON withdrawals
    FOR EACH ROW
    WHEN (NEW.anomaly IS NOT NULL
          AND NEW.anomaly IS DISTINCT FROM OLD.anomaly
          AND NEW.anomaly_seq = OLD.anomaly_seq)
    EXECUTE FUNCTION withdrawals_count_anomaly();
