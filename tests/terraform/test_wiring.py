"""The Terraform module's wiring, read from its HCL (python-hcl2): what checkov cannot know.

The staging bucket notifies the work queue (and only for staged objects), the work queue accepts
only that bucket, the event source mapping reports batch item failures with the concurrency the
rate limit was divided by, every IAM statement names its resources (the only `*` are documented
exceptions), the retention validation has CloudTrail Lake's bounds, the channel is a Custom
source with a policy for the load role only, and secrets stay out of outputs.
"""

import glob
import os

import hcl2
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "infra", "terraform")


def flat(x):
    """hcl2 wraps values in lists, sometimes twice: unwrap single-element lists."""
    while isinstance(x, list) and len(x) == 1:
        x = x[0]
    return x


@pytest.fixture(scope="module")
def tf():
    blocks = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}}
    for path in sorted(glob.glob(os.path.join(ROOT, "*.tf"))):
        with open(path) as f:
            doc = hcl2.load(f)
        for kind in ("resource", "data"):
            for entry in doc.get(kind, []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        blocks[kind][f"{rtype}.{name}"] = body
        for entry in doc.get("variable", []):
            blocks["variable"].update(entry)
        for entry in doc.get("output", []):
            blocks["output"].update(entry)
        for entry in doc.get("locals", []):
            blocks["locals"].update(entry)
    return blocks


def test_the_bucket_notifies_the_work_queue_for_staged_objects_only(tf):
    n = tf["resource"]["aws_s3_bucket_notification.staging"]
    queue = flat(n["queue"])
    assert flat(queue["queue_arn"]) == "${aws_sqs_queue.work.arn}"
    assert flat(queue["events"]) == "s3:ObjectCreated:*"
    assert flat(queue["filter_prefix"]) == "${local.staging_prefix}"
    assert flat(tf["locals"]["staging_prefix"]) == "staged/"
    policy = tf["data"]["aws_iam_policy_document.work_queue"]
    st = flat(policy["statement"])
    assert flat(st["actions"]) == "sqs:SendMessage"
    conditions = {flat(c["variable"]): flat(c["values"]) for c in st["condition"]}
    assert conditions["aws:SourceArn"] == "${aws_s3_bucket.staging.arn}"


def test_the_event_source_mapping_reports_batch_item_failures(tf):
    esm = tf["resource"]["aws_lambda_event_source_mapping.load"]
    assert flat(esm["event_source_arn"]) == "${aws_sqs_queue.work.arn}"
    assert flat(esm["function_response_types"]) == "ReportBatchItemFailures"
    assert flat(flat(esm["scaling_config"])["maximum_concurrency"]) == "${var.load_max_concurrency}"
    env = flat(flat(tf["resource"]["aws_lambda_function.load"]["environment"])["variables"])
    assert env["AZTRAIL_MAX_CALLS_PER_SECOND"] == "${tostring(local.load_calls_per_second)}"
    assert "var.load_max_concurrency" in flat(tf["locals"]["load_calls_per_second"])


def test_work_messages_go_to_a_dead_letter_queue(tf):
    work = tf["resource"]["aws_sqs_queue.work"]
    assert "aws_sqs_queue.dead_letter.arn" in flat(work["redrive_policy"])
    assert "var.max_receive_count" in flat(work["redrive_policy"])
    for q in ("work", "dead_letter", "failures"):
        assert flat(tf["resource"][f"aws_sqs_queue.{q}"]["kms_master_key_id"]) == "${local.kms_key_arn}"


# The only statements that may use "*": a key policy's own resource ("*" means this key), and
# X-Ray's trace actions, which have no resource-level permissions.
STAR_ALLOWED = {("kms", "AccountAdministers"), ("kms", "S3NotifiesEncryptedQueue"), ("kms", "LogsEncrypt")}


def test_every_iam_statement_names_its_resources(tf):
    seen = 0
    for key, doc in tf["data"].items():
        if not key.startswith("aws_iam_policy_document."):
            continue
        name = key.split(".", 1)[1]
        for st in doc.get("statement", []):
            sid = flat(st.get("sid", [""]))
            resources = st.get("resources")
            if "principals" in st and name == "lambda_assume":
                continue
            if name in ("lambda_assume",):
                continue
            assert resources, f"{name}/{sid}: no resources"
            values = flat(resources)
            values = values if isinstance(values, list) else [values]
            seen += 1
            if "*" in values:
                assert (name, sid) in STAR_ALLOWED or sid == "Traces", f"{name}/{sid} uses *"
                if sid == "Traces":
                    actions = flat(st["actions"])
                    assert all(a.startswith("xray:") for a in actions), actions
    assert seen >= 20
    # Inline JSON policies (the scheduler's) name their resources too.
    policy = flat(tf["resource"]["aws_iam_role_policy.scheduler"]["policy"])
    assert "aws_lambda_function.ingest.arn" in policy and '"*"' not in policy


def test_each_function_role_gets_only_its_own_actions(tf):
    def actions(doc):
        out = set()
        for st in tf["data"][f"aws_iam_policy_document.{doc}"]["statement"]:
            a = flat(st["actions"])
            out.update(a if isinstance(a, list) else [a])
        return out

    ingest, load = actions("ingest"), actions("load")
    assert "cloudtrail-data:PutAuditEvents" in load and "cloudtrail-data:PutAuditEvents" not in ingest
    assert "secretsmanager:GetSecretValue" in ingest and "secretsmanager:GetSecretValue" not in load
    assert "sqs:DeleteMessage" in load and "sqs:DeleteMessage" not in ingest


def test_the_channel_is_custom_and_only_the_load_role_may_use_it(tf):
    ch = tf["resource"]["awscc_cloudtrail_channel.this"]
    assert flat(ch["source"]) == "Custom"
    dest = flat(ch["destinations"])
    assert flat(dest["type"]) == "EVENT_DATA_STORE"
    st = flat(tf["data"]["aws_iam_policy_document.channel"]["statement"])
    assert flat(flat(st["principals"])["identifiers"]) == "${aws_iam_role.load.arn}"
    assert flat(st["actions"]) == "cloudtrail-data:PutAuditEvents"


def test_the_created_store_selects_integration_events(tf):
    eds = tf["resource"]["aws_cloudtrail_event_data_store.this"]
    sel = flat(flat(eds["advanced_event_selector"])["field_selector"])
    assert (flat(sel["field"]), flat(sel["equals"])) == ("eventCategory", "ActivityAuditLog")
    assert flat(eds["retention_period"]) == "${var.retention_days}"


def test_retention_is_validated_with_cloudtrail_lakes_bounds(tf):
    v = tf["variable"]["retention_days"]
    cond = flat(flat(v["validation"])["condition"])
    assert "var.retention_days >= 7" in cond and "var.retention_days <= 2557" in cond


def test_the_bucket_is_private_encrypted_versioned_and_tls_only(tf):
    r = tf["resource"]
    pab = r["aws_s3_bucket_public_access_block.staging"]
    assert all(flat(pab[k]) is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    rule = flat(flat(r["aws_s3_bucket_server_side_encryption_configuration.staging"]["rule"])["apply_server_side_encryption_by_default"])
    assert flat(rule["sse_algorithm"]) == "aws:kms"
    assert flat(flat(r["aws_s3_bucket_versioning.staging"]["versioning_configuration"])["status"]) == "Enabled"
    deny = flat(tf["data"]["aws_iam_policy_document.staging"]["statement"])
    assert flat(deny["effect"]) == "Deny"
    assert flat(flat(deny["condition"])["variable"]) == "aws:SecureTransport"


def test_secrets_stay_out_of_outputs_and_settings(tf):
    for name, out in tf["output"].items():
        assert "secret" not in flat(out["value"]).lower(), name
    env = flat(flat(tf["resource"]["aws_lambda_function.ingest"]["environment"])["variables"])
    assert env["AZTRAIL_AZURE_SECRET_ARN"] == "${var.azure_secret_arn}", "only the secret's ARN"
