DROP INDEX IF EXISTS idx_challenges_one_attempt;
