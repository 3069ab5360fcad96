-- 0011: a workflow's runs newest first, for WorkflowRunList's Workflow
-- filter (a workflow's name given where a run id is means its newest run).

CREATE INDEX workflow_runs_workflow ON workflow_runs (workflow, created_at, id);
