-- The append-only audit trail in order (pseudonymous subjects only).
SELECT id, at, actor, event, subject, details
FROM audit_events
ORDER BY id;
