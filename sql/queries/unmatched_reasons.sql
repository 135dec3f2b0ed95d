-- Why households were left unmatched, per round (reason text as stored with each household).
SELECT round_id, reason, COUNT(*) AS households, SUM(persons) AS persons
FROM unmatched
GROUP BY round_id, reason
ORDER BY round_id, households DESC, reason;
