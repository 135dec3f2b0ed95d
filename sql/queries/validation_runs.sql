-- Every validation run with its Data Docs report, newest first (auditors).
SELECT v.created_at, f.original_name AS file, f.sha256, v.table_name, v.success, v.evaluated_rows,
       v.invalid_rows, v.report_path
FROM validation_runs v
JOIN raw_files f ON f.id = v.raw_file_id
ORDER BY v.created_at DESC, v.id DESC;
