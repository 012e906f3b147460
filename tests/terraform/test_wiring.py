"""The Terraform module's wiring, read from its HCL (python-hcl2): what checkov cannot know.

The staging bucket notifies the work queue (and only for staged objects), the work queue accepts
only that bucket, the event source mapping reports batch item failures with the concurrency the
rate limit was divided by, every IAM statement names its resources (the only `*` are documented
exceptions), the retention validation has CloudTrail Lake's bounds, the channel is a Custom
source with a policy for the load role only, and secrets stay out of outputs.

Both destinations: with "cloudtrail" the store, channel and channel policy exist and the load role
may PutAuditEvents on the channel only; with "cloudwatch" none of them exist, the events log group
does (retention, the module's key) and the load role may only create streams and put events in
that group; with "securitylake" none of those, but a custom source per OCSF class with its Glue
crawler role, the load role writing under those sources only, and the trigger's batching window
gathering a batch of files per invocation. The dashboard's JSON (rendered from its template as Terraform does) draws only
metrics the functions emit, and shows every alarm.
"""

import glob
import json
import os
import re

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
    assert "'AZTRAIL_MAX_CALLS_PER_SECOND': '${tostring(local.load_calls_per_second)}'" in env
    assert "var.load_max_concurrency" in flat(tf["locals"]["load_calls_per_second"])
    # The quota divided is the destination's: PutAuditEvents' 100, PutLogEvents' 800 at least.
    assert "local.account_calls_per_second" in flat(tf["locals"]["load_calls_per_second"])
    quota = flat(tf["locals"]["account_calls_per_second"])
    assert "local.cloudtrail ? 100 : 800" in quota, quota


def test_work_messages_go_to_a_dead_letter_queue(tf):
    work = tf["resource"]["aws_sqs_queue.work"]
    assert "aws_sqs_queue.dead_letter.arn" in flat(work["redrive_policy"])
    assert "var.max_receive_count" in flat(work["redrive_policy"])
    for q in ("work", "dead_letter", "failures"):
        assert flat(tf["resource"][f"aws_sqs_queue.{q}"]["kms_master_key_id"]) == "${local.kms_key_arn}"


# The only statements that may use "*": a key policy's own resource ("*" means this key), and
# X-Ray's trace actions, which have no resource-level permissions.
STAR_ALLOWED = {("kms", "AccountAdministers"), ("kms", "S3NotifiesEncryptedQueue"), ("kms", "LogsEncrypt")}


def statements(doc):
    """A policy document's statements, those of `dynamic "statement"` blocks included (with the
    expression their for_each is)."""
    out = [(st, None) for st in doc.get("statement", [])]
    for d in doc.get("dynamic", []):
        if "statement" in d:
            body = d["statement"]
            out.append((flat(body["content"]), flat(body["for_each"])))
    return out


def enabled(expr, destination, fan_out=False):
    """Evaluates a count or for_each condition of the form `${COND ? A : B}` for `destination`
    (and ingest's fan-out on or off); True when the block exists (a count of 1, a non-empty
    list)."""
    if expr is None:
        return True
    m = re.fullmatch(r"\$\{(.*) \? (.*) : (.*)\}", flat(expr), re.S)
    assert m, expr
    cond = (
        m.group(1)
        .replace("local.cloudtrail", str(destination == "cloudtrail"))
        .replace("local.cloudwatch", str(destination == "cloudwatch"))
        .replace("local.securitylake", str(destination == "securitylake"))
        .replace("var.securitylake_kms_key_arn != None", "True")
        .replace("var.event_data_store_arn == None", "True")
        .replace("local.fan_out", str(fan_out))
        .replace("&&", " and ")
        .replace("!", " not ")
    )
    chosen = m.group(2) if eval(cond) else m.group(3)  # noqa: S307 - our own HCL, checked form
    return chosen.strip() not in ("0", "[]")


def test_every_iam_statement_names_its_resources(tf):
    seen = 0
    for key, doc in tf["data"].items():
        if not key.startswith("aws_iam_policy_document."):
            continue
        name = key.split(".", 1)[1]
        for st, _ in statements(doc):
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
    def actions(doc, destination):
        out = set()
        for st, when in statements(tf["data"][f"aws_iam_policy_document.{doc}"]):
            if enabled(when, destination):
                a = flat(st["actions"])
                out.update(a if isinstance(a, list) else [a])
        return out

    for destination in ("cloudtrail", "cloudwatch", "securitylake"):
        ingest, load = actions("ingest", destination), actions("load", destination)
        assert "cloudtrail-data:PutAuditEvents" not in ingest
        assert not any(a.startswith("sqs:") and a != "sqs:SendMessage" for a in ingest), ingest
        assert "secretsmanager:GetSecretValue" in ingest and "secretsmanager:GetSecretValue" not in load
        assert "sqs:DeleteMessage" in load and "sqs:DeleteMessage" not in ingest
    assert "cloudtrail-data:PutAuditEvents" in actions("load", "cloudtrail")
    assert "cloudtrail-data:PutAuditEvents" not in actions("load", "cloudwatch")
    sl = actions("load", "securitylake")
    assert "cloudtrail-data:PutAuditEvents" not in sl and "s3:PutObject" in sl


def test_the_destination_chooses_its_resources_and_the_load_roles_rights(tf):
    r = tf["resource"]
    ct_only = [
        "aws_cloudtrail_event_data_store.this",
        "awscc_cloudtrail_channel.this",
        "awscc_cloudtrail_resource_policy.channel",
    ]
    for destination in ("cloudtrail", "cloudwatch", "securitylake"):
        for key in ct_only:
            assert enabled(r[key].get("count"), destination) == (destination == "cloudtrail"), (key, destination)
        assert enabled(tf["data"]["aws_iam_policy_document.channel"].get("count"), destination) == (
            destination == "cloudtrail"
        )
        assert enabled(r["aws_cloudwatch_log_group.events"].get("count"), destination) == (
            destination == "cloudwatch"
        )
    # Every CloudTrail resource of the module is among those switched off for CloudWatch.
    assert {k for k in r if "cloudtrail" in k.split(".")[0]} == set(ct_only)

    group = r["aws_cloudwatch_log_group.events"]
    assert flat(group["retention_in_days"]) == "${var.events_log_retention_days}"
    assert flat(group["kms_key_id"]) == "${local.kms_key_arn}"
    # The module's key lets CloudWatch Logs use it for this group's name.
    kms = tf["data"]["aws_iam_policy_document.key"] if "aws_iam_policy_document.key" in tf["data"] else None
    logs_encrypt = [
        st
        for doc in tf["data"].values()
        for st in doc.get("statement", [])
        if flat(st.get("sid", [""])) == "LogsEncrypt"
    ]
    assert logs_encrypt, kms
    allowed = flat(flat(logs_encrypt[0]["condition"])["values"])
    assert any(v.endswith("log-group:/${var.name}/*") for v in allowed), allowed
    assert flat(group["name"]).startswith("/${var.name}/")

    # The load role: PutLogEvents and CreateLogStream on that group's streams only.
    by_sid = {flat(st["sid"]): (st, when) for st, when in statements(tf["data"]["aws_iam_policy_document.load"])}
    st, when = by_sid["PutLogEvents"]
    assert sorted(flat(st["actions"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert flat(st["resources"]) == "${statement.value}:*"
    assert "aws_cloudwatch_log_group.events[0].arn" in when
    assert enabled(when, "cloudwatch") and not enabled(when, "cloudtrail")
    st, when = by_sid["PutEvents"]
    assert "local.channel_arn" in when and enabled(when, "cloudtrail") and not enabled(when, "cloudwatch")

    # The function is told which: the channel, or the group and the account.
    env = flat(flat(r["aws_lambda_function.load"]["environment"])["variables"])
    assert "local.destination_env" in env
    dest_env = flat(tf["locals"]["destination_env"])
    ct_branch, cw_branch, sl_branch = re.split(r" : (?:local\.cloudwatch \? )?tomap\(", dest_env)
    assert "'AZTRAIL_DESTINATION': 'cloudtrail'" in ct_branch and "AZTRAIL_CHANNEL_ARN" in ct_branch
    assert "'AZTRAIL_DESTINATION': 'cloudwatch'" in cw_branch
    assert "AZTRAIL_LOG_GROUP" in cw_branch and "AZTRAIL_ACCOUNT_ID" in cw_branch
    assert "AZTRAIL_CHANNEL_ARN" not in cw_branch
    assert "'AZTRAIL_DESTINATION': 'securitylake'" in sl_branch
    for name in ("AZTRAIL_SECURITYLAKE_BUCKET", "AZTRAIL_SECURITYLAKE_LOCATIONS", "AZTRAIL_ACCOUNT_ID",
                 "AZTRAIL_SECURITYLAKE_REGION", "AZTRAIL_BATCH_MAX_SECONDS"):
        assert name in sl_branch, name
    assert "AZTRAIL_CHANNEL_ARN" not in sl_branch and "AZTRAIL_LOG_GROUP" not in sl_branch
    v = tf["variable"]["destination"]
    assert flat(v["default"]) == "cloudtrail"
    assert "cloudwatch" in flat(flat(v["validation"])["condition"])
    assert "securitylake" in flat(flat(v["validation"])["condition"])


def test_security_lake_gets_a_custom_source_per_class_and_only_it(tf):
    r = tf["resource"]
    source = r["aws_securitylake_custom_log_source.this"]
    # One source per class, only with destination = securitylake.
    assert flat(source["for_each"]) == "${local.securitylake_classes}"
    classes = flat(tf["locals"]["securitylake_classes"])
    assert enabled(classes.replace("var.securitylake_event_classes", "1").replace("{}", "0"), "securitylake")
    assert not enabled(classes.replace("var.securitylake_event_classes", "1").replace("{}", "0"), "cloudwatch")
    assert flat(source["event_classes"]) == "${each.value}"
    defaults = flat(tf["variable"]["securitylake_event_classes"]["default"])
    assert defaults == {
        "api_activity": "API_ACTIVITY",
        "authentication": "AUTHENTICATION",
        "account_change": "ACCOUNT_CHANGE",
        "entity_management": "ENTITY_MANAGEMENT_AUDIT",
    }
    # Its Glue crawler's role: assumed by Glue, reading the sources only.
    config = flat(source["configuration"])
    assert flat(flat(config["crawler_configuration"])["role_arn"]) == "${aws_iam_role.securitylake_crawler[0].arn}"
    for key in ("aws_iam_role.securitylake_crawler", "aws_iam_role_policy.securitylake_crawler",
                "aws_iam_role_policy_attachment.securitylake_crawler_glue"):
        for destination in ("cloudtrail", "cloudwatch", "securitylake"):
            assert enabled(r[key].get("count"), destination) == (destination == "securitylake"), (key, destination)
    assert "glue.amazonaws.com" in flat(r["aws_iam_role.securitylake_crawler"]["assume_role_policy"])
    # The load role writes under the sources' locations only.
    by_sid = {flat(st["sid"]): (st, when) for st, when in statements(tf["data"]["aws_iam_policy_document.load"])}
    st, when = by_sid["PutSourceFiles"]
    assert flat(st["actions"]) == "s3:PutObject" and flat(st["resources"]) == "${statement.value}"
    assert "local.securitylake_object_arns" in when
    assert enabled(when, "securitylake") and not enabled(when, "cloudtrail") and not enabled(when, "cloudwatch")
    arns = flat(tf["locals"]["securitylake_object_arns"])
    assert "local.securitylake_locations" in arns and arns.endswith('/*"]}') or "/*" in arns, arns
    # The trigger gathers the batching window's notifications into one invocation.
    esm = r["aws_lambda_event_source_mapping.load"]
    window = flat(esm["maximum_batching_window_in_seconds"])
    assert window == "${local.securitylake ? var.securitylake_batch_window_seconds : 5}", window
    assert flat(tf["variable"]["securitylake_batch_window_seconds"]["default"]) == 300
    assert "local.securitylake ? 10000" in flat(esm["batch_size"])
    storage = flat(flat(r["aws_lambda_function.load"]["ephemeral_storage"])["size"])
    assert "var.securitylake_ephemeral_storage_mb" in storage
    assert "securitylake_locations" in tf["output"]


def emitted_metrics():
    """The metric names the functions' EMF lines carry, read from the Rust sources."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    names = set()
    for src in ("crates/load/src/metrics.rs", "crates/ingest/src/run.rs"):
        with open(os.path.join(root, src)) as f:
            names.update(re.findall(r'\("([A-Za-z]+)", "(?:Count|Bytes|Seconds)"', f.read()))
    return names


def test_the_dashboard_draws_emitted_metrics_and_every_alarm(tf):
    dash = tf["resource"]["aws_cloudwatch_dashboard.this"]
    body = flat(dash["dashboard_body"])
    assert "dashboard.json.tftpl" in body
    with open(os.path.join(ROOT, "dashboard.json.tftpl")) as f:
        template = f.read()
    values = {
        "region": "us-east-1",
        "load_function": "aztrail-load",
        "ingest_function": "aztrail-ingest",
        "work_queue": "aztrail-work",
        "failure_queue": "aztrail-failures",
        "dead_letter_queue": "aztrail-dlq",
        "alarms": json.dumps(["arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"]),
    }
    placeholders = set(re.findall(r"\$\{([a-z_]+)\}", template))
    assert placeholders == set(values), placeholders
    for name in placeholders:
        assert f"'{name}'" in body, f"{name} is not given to the template"
    for k, v in values.items():
        template = template.replace("${" + k + "}", v)
    widgets = json.loads(template)["widgets"]
    emitted = emitted_metrics()
    assert {"Accepted", "Failed", "LagSeconds", "MessagesLeft", "NewBytes", "Contended"} <= emitted
    drawn = set()
    for w in widgets:
        for m in w["properties"].get("metrics", []):
            namespace, name, dim, function = m[:4]
            if namespace == "aztrail":
                assert dim == "Function" and function in ("aztrail-load", "aztrail-ingest"), m
                assert name in emitted, f"{name} is drawn but no function emits it"
                drawn.add(name)
    # Events accepted and failed, lag, messages left, bytes staged, contention.
    assert {"Accepted", "Failed", "LagSeconds", "MessagesLeft", "NewBytes", "Contended"} <= drawn
    alarm = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarm) == 1 and alarm[0]["properties"]["alarms"] == json.loads(values["alarms"])
    # Every alarm of the module is on it.
    alarms_expr = body.replace(" ", "")
    for key in tf["resource"]:
        if key.startswith("aws_cloudwatch_metric_alarm."):
            assert key in alarms_expr, f"{key} is not on the dashboard"


def test_the_channel_is_custom_and_only_the_load_role_may_use_it(tf):
    ch = tf["resource"]["awscc_cloudtrail_channel.this"]
    assert enabled(ch["count"], "cloudtrail")
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
    # merge({...}, fan-out settings): the secret's setting is its ARN, nothing else of it.
    assert "'AZTRAIL_AZURE_SECRET_ARN': '${var.azure_secret_arn}'" in env, "only the secret's ARN"
    assert env.count("azure_secret") == 1, env


def test_the_ingest_fan_out_is_wired_only_when_asked_for(tf):
    r = tf["resource"]
    fan_out = [
        "aws_sqs_queue.ingest_work",
        "aws_sqs_queue.ingest_work_dlq",
        "aws_sqs_queue_redrive_allow_policy.ingest_work_dlq",
        "aws_lambda_event_source_mapping.ingest_work",
    ]
    for key in fan_out:
        assert flat(r[key]["count"]) == "${local.fan_out ? 1 : 0}", key
    assert flat(tf["locals"]["fan_out"]) == "${var.ingest_workers > 0}"
    # Work shards that keep failing go to a dead-letter queue, which alarms.
    work = r["aws_sqs_queue.ingest_work"]
    assert "aws_sqs_queue.ingest_work_dlq[*].arn" in flat(work["redrive_policy"])
    assert flat(work["kms_master_key_id"]) == "${local.kms_key_arn}"
    alarms = flat(r["aws_cloudwatch_metric_alarm.queue_depth"]["for_each"])
    assert "ingest-work-dead-letter-queue" in alarms and "aws_sqs_queue.ingest_work_dlq[*].name" in alarms
    # The queue triggers the ingest function, one shard per invocation, partial failures out,
    # as many at once as workers were asked for; the function keeps one more for the tick.
    esm = r["aws_lambda_event_source_mapping.ingest_work"]
    assert flat(esm["function_name"]) == "${aws_lambda_function.ingest.arn}"
    assert flat(esm["batch_size"]) == 1
    assert flat(esm["function_response_types"]) == "ReportBatchItemFailures"
    assert "var.ingest_workers" in flat(flat(esm["scaling_config"])["maximum_concurrency"])
    ingest = r["aws_lambda_function.ingest"]
    assert flat(ingest["reserved_concurrent_executions"]) == "${local.fan_out ? var.ingest_workers + 1 : 1}"
    env = flat(flat(ingest["environment"])["variables"])
    assert "AZTRAIL_INGEST_WORK_QUEUE_URL" in env and "aws_sqs_queue.ingest_work[*].id" in env
    assert "AZTRAIL_WORK_SHARDS" in env
    # The ingest role may use that queue, and only with the fan-out on.
    ingest_doc = tf["data"]["aws_iam_policy_document.ingest"]
    work_statements = [
        (st, when) for st, when in statements(ingest_doc) if flat(st.get("sid")) == "IngestWork"
    ]
    assert len(work_statements) == 1
    st, when = work_statements[0]
    assert flat(st["resources"]) == "${aws_sqs_queue.ingest_work[*].arn}"
    assert enabled(when, "cloudtrail", fan_out=True) and not enabled(when, "cloudtrail")
    assert "sqs:DeleteMessage" in flat(st["actions"])
