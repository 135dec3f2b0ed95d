-- Open quarantine per file and rule: what coordinators must correct and re-submit.
SELECT f.original_name AS file, f.sha256, q.table_name, q.rule, COUNT(*) AS rows_affected, MIN(q.message) AS example
FROM quarantine q
JOIN raw_files f ON f.id = q.raw_file_id
WHERE q.resolved_at IS NULL
GROUP BY f.original_name, f.sha256, q.table_name, q.rule
ORDER BY f.original_name, rows_affected DESC;
