-- Sign-ins to the pages, kept here so that signing out ends one at once: a
-- cookie names its session, and a session that is gone signs nobody in.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
