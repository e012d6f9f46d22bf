"""`r53sigma deploy`: push what `r53sigma package` built (dist/) into a live SIEM, plan first.

Every target reads its current state, computes a plan (create / update / unchanged / delete with
`--prune`), prints it, and applies it action by action with bounded retries on rate limits and
transient errors. common.py holds what the targets share; one module per target:

- elastic.py: the `elasticsearch` client for ingest pipelines and templates, Kibana's
  detection-engine API for the rules;
- splunk.py: `splunklib.client` saved searches in the pack's app namespace;
- cloudwatch.py: boto3 CloudWatch Logs query definitions, field-index account policies and
  transformers, as dist/cloudwatch/template.json declares them.

Queries are never rendered here: a deploy sends the bytes `package` wrote.
"""
