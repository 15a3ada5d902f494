-- One attempt per authorization (issue 14, as Boulder does): at most one
-- challenge of an authorization is `processing` at a time, so a second
-- concurrent POST to any of its challenges cannot start a second probe.
-- store::authzs::start_challenge moves pending → processing only when no
-- sibling is processing; this index makes the database refuse it anyway.
-- A database from before may hold two processing siblings (a race the old
-- code allowed): all but the first go back to pending.
UPDATE challenges SET status = 'pending'
 WHERE status = 'processing'
   AND id NOT IN (SELECT MIN(id) FROM challenges
                   WHERE status = 'processing' GROUP BY authz_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_challenges_one_attempt
    ON challenges(authz_id) WHERE status = 'processing';
