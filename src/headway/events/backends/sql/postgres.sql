-- Tables of the postgresql:// events backend (created once, under an advisory lock).
-- A channel's offset state: its epoch and the seq of its latest message.
CREATE TABLE IF NOT EXISTS headway_event_channels (
    channel     text PRIMARY KEY,
    epoch       text NOT NULL,
    seq         bigint NOT NULL,
    touched_at  timestamptz NOT NULL DEFAULT now()
);
-- Recent messages per channel, trimmed on each publish by count and age.
CREATE TABLE IF NOT EXISTS headway_event_log (
    channel     text NOT NULL,
    seq         bigint NOT NULL,
    event       text NOT NULL,
    data        text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (channel, seq)
);
CREATE INDEX IF NOT EXISTS headway_event_log_created ON headway_event_log (created_at);
CREATE INDEX IF NOT EXISTS headway_event_channels_touched ON headway_event_channels (touched_at);
