-- 0012: when each part of a job's output was logged (job.LogMark, packed
-- by job.EncodeMarks), for logs --since and -t. Empty for output kept
-- before: it has no times.

ALTER TABLE logs ADD COLUMN stdout_marks BLOB NOT NULL DEFAULT x'';
ALTER TABLE logs ADD COLUMN stderr_marks BLOB NOT NULL DEFAULT x'';
