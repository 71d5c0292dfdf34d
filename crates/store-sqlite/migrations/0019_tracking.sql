-- Open and click tracking: whether a message gets an open pixel and links through the signed
-- redirect when it is composed for a relay. Messages from before tracking existed had neither.
ALTER TABLE messages ADD COLUMN track_opens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN track_clicks INTEGER NOT NULL DEFAULT 0;
