"""`--destination securitylake` read back by readers no one here wrote: pyarrow for the Parquet
files, and the OCSF 1.1.0 schema as the `ocsf-json-schema` package publishes it (validated with
`jsonschema`).

Loads the corpus (../shared/corpus, read in place) and generated records into a directory with
`aztrail load`, maps the same inputs with `aztrail transform --format ocsf`, and checks: every
accepted record is there once, in its class's location and its day's partition, with the values
mapped; files are sorted by time with millisecond timestamps and zstd pages; every event
validates against the published schema.
"""

import contextlib
import datetime
import json
import os
import pathlib
import socket
import subprocess
import tempfile

import jsonschema
import pyarrow.parquet as pq
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

BIN = os.environ.get("AZTRAIL_BIN", "target/debug/aztrail")
CORPUS = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
ACCOUNT = "123456789012"
CLASSES = {3001: "account_change", 3002: "authentication", 3004: "entity_management", 6003: "api_activity"}


def inputs(tmp):
    files = sorted(str(p) for p in CORPUS.rglob("*") if p.suffix in (".json", ".jsonl"))
    assert len(files) >= 40, f"is ../shared/corpus there? {CORPUS}"
    gen = os.path.join(tmp, "generated.jsonl")
    with open(gen, "wb") as f:
        subprocess.run([BIN, "gen", "--records", "3000", "--seed", "11"], stdout=f, check=True)
    # Entra audit records of the user-lifecycle kind, which the corpus lacks.
    account = os.path.join(tmp, "account_changes.jsonl")
    with open(account, "w") as f:
        for i, activity in enumerate(["Add user", "Reset user password", "User registered security info", "Delete user"]):
            f.write(json.dumps({
                "time": f"2024-03-0{i + 1}T10:00:00.123Z", "category": "AuditLogs", "level": "Informational",
                "operationName": activity, "tenantId": "t-1", "correlationId": f"c-{i}",
                "properties": {"activityDisplayName": activity, "result": "success", "loggedByService": "Core Directory",
                               "initiatedBy": {"user": {"id": "admin-1", "userPrincipalName": "admin@contoso.example", "ipAddress": "10.1.2.3"}},
                               "targetResources": [{"id": f"user-{i}", "userPrincipalName": f"u{i}@contoso.example", "type": "User"}]},
            }) + "\n")
    return files + [gen, account]


@pytest.fixture(scope="module")
def lake():
    tmp = tempfile.mkdtemp(prefix="aztrail-securitylake-")
    files = inputs(tmp)
    out = os.path.join(tmp, "lake")
    failures = os.path.join(tmp, "failures.jsonl")
    load = subprocess.run(
        [BIN, "load", "--destination", "securitylake", "--securitylake-dir", out, "--account-id", ACCOUNT,
         "--securitylake-region", "eu-west-1", "--failure-file", failures, *files],
        capture_output=True, text=True,
    )
    assert load.returncode in (0, 1), load.stderr
    summary = json.loads(load.stdout)["total"]
    mapped = subprocess.run([BIN, "transform", "--format", "ocsf", *files], capture_output=True, text=True)
    assert mapped.returncode in (0, 1), mapped.stderr
    events = [json.loads(line) for line in mapped.stdout.splitlines()]
    rejected = sum(1 for _ in open(failures)) if os.path.exists(failures) else 0
    return out, summary, events, rejected


@contextlib.contextmanager
def moto():
    """moto's server on a free port for the block, stopped after it."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def plain(v):
    """A pyarrow row as OCSF JSON: no nulls, timestamps in ms, maps as objects."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if x is not None and plain(x) is not None}
    if isinstance(v, list):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            return {k: x for k, x in v}
        return [plain(x) for x in v]
    if isinstance(v, datetime.datetime):
        return int(v.timestamp() * 1000 + 0.5) if v.tzinfo else None
    return v


def rows(out):
    for path in sorted(pathlib.Path(out).rglob("*.parquet")):
        table = pq.read_table(path, partitioning=None)
        yield path, table


def test_every_accepted_record_is_there_once_in_its_class_and_partition(lake):
    out, summary, events, rejected = lake
    by_uid = {e["metadata"]["uid"]: e for e in events}
    assert summary["events"] == len(events) > 3000
    assert summary["rejected"] == rejected
    seen = {}
    for path, table in rows(out):
        rel = path.relative_to(out).parts
        location, region, account, day = rel[0:2], rel[2], rel[3], rel[4]
        assert region == "region=eu-west-1" and account == f"accountId={ACCOUNT}", rel
        for row in table.to_pylist():
            ev = plain(row)
            uid = ev["metadata"]["uid"]
            assert uid not in seen, f"{uid} twice: {seen.get(uid)} and {path}"
            seen[uid] = path
            assert location == ("ext", f"aztrail_{CLASSES[ev['class_uid']]}"), (location, ev["class_uid"])
            when = datetime.datetime.fromtimestamp(ev["time"] / 1000, datetime.timezone.utc)
            assert day == f"eventDay={when:%Y%m%d}", (day, ev["time"])
            assert ev == by_uid[uid], f"{path}: {ev} != {by_uid[uid]}"
    assert set(seen) == set(by_uid)
    assert {e["class_uid"] for e in events} == set(CLASSES)


def test_files_are_as_security_lake_wants_them(lake):
    out = lake[0]
    for path, table in rows(out):
        meta = pq.ParquetFile(path).metadata
        time = table.schema.field("time").type
        assert str(time) == "timestamp[ms, tz=+00:00]", time
        times = table.column("time").to_pylist()
        assert times == sorted(times), path
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            assert rg.total_byte_size <= 256 << 20
            for c in range(rg.num_columns):
                assert rg.column(c).compression == "ZSTD"


def test_every_event_validates_against_the_published_ocsf_1_1_0_schema(lake):
    out = lake[0]
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.1.0"))
    validators = {}
    checked = 0
    for path, table in rows(out):
        for row in table.to_pylist():
            ev = plain(row)
            # The schema of the class with the profiles the event declares.
            key = (ev["class_uid"], tuple(ev["metadata"]["profiles"]))
            if key not in validators:
                name = schema.lookup_class_name_from_uid(class_uid=key[0])
                validators[key] = jsonschema.Draft202012Validator(schema.get_class_schema(class_name=name, profiles=list(key[1])))
            errors = sorted(validators[key].iter_errors(ev), key=str)
            assert not errors, f"{path}: {[e.message for e in errors[:5]]}\n{json.dumps(ev)[:2000]}"
            checked += 1
    assert checked > 3000
    assert {k[0] for k in validators} == set(CLASSES)


def test_run_writes_the_tree_locally_and_a_batch_written_again_replaces_its_files():
    tmp = tempfile.mkdtemp(prefix="aztrail-securitylake-run-")
    work = os.path.join(tmp, "run")
    first = subprocess.run([BIN, "run", "--dir", work, "--destination", "securitylake", "--example-records", "300"],
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    files = sorted(pathlib.Path(work, "securitylake").rglob("*.parquet"))
    uids = [u for f in files for u in pq.read_table(f, partitioning=None).column("metadata").combine_chunks().field("uid").to_pylist()]
    assert len(uids) == len(set(uids)) == 1800
    # As after a crash between writing the files and recording them: the same batch is read
    # again and its files are replaced, not added to.
    os.remove(os.path.join(work, "securitylake-acknowledged.txt"))
    again = subprocess.run([BIN, "run", "--dir", work, "--destination", "securitylake"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert sorted(pathlib.Path(work, "securitylake").rglob("*.parquet")) == files


def test_load_puts_the_files_in_s3_on_moto():
    import boto3

    with moto() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="a", aws_secret_access_key="b")
        s3.create_bucket(Bucket="lake")
        tmp = tempfile.mkdtemp(prefix="aztrail-securitylake-s3-")
        gen = os.path.join(tmp, "generated.jsonl")
        with open(gen, "wb") as f:
            subprocess.run([BIN, "gen", "--records", "500", "--seed", "3"], stdout=f, check=True)
        env = dict(os.environ, AWS_ENDPOINT_URL_S3=url, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b",
                   AWS_REGION="us-east-1")
        load = subprocess.run(
            [BIN, "load", "--destination", "securitylake", "--securitylake-bucket", "lake", "--s3-path-style",
             "--securitylake-location", "api_activity=s3://lake/ext/azure_api/1.0/", "--account-id", ACCOUNT, gen],
            capture_output=True, text=True, env=env,
        )
        assert load.returncode == 0, load.stderr
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
        assert keys and all("/region=us-east-1/accountId=123456789012/eventDay=" in k for k in keys), keys
        assert any(k.startswith("ext/azure_api/1.0/region=") for k in keys), keys
        rows = 0
        for k in keys:
            local = os.path.join(tmp, os.path.basename(k))
            s3.download_file("lake", k, local)
            rows += pq.read_table(local, partitioning=None).num_rows
        assert rows == 500
        # A bucket that is not there stops the load before anything is read, with one error.
        bad = subprocess.run(
            [BIN, "load", "--destination", "securitylake", "--securitylake-bucket", "no-such-lake", "--s3-path-style",
             "--account-id", ACCOUNT, gen], capture_output=True, text=True, env=env)
        assert bad.returncode == 2 and "no-such-lake" in bad.stderr, bad.stderr


def test_run_through_a_staging_bucket_and_its_queue_on_moto():
    import boto3

    with moto() as url:
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
        s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        s3.create_bucket(Bucket="staging")
        work = sqs.create_queue(QueueName="work")["QueueUrl"]
        failures = sqs.create_queue(QueueName="failures")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(Bucket="staging", NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                     "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "staged/"}]}}}]})
        tmp = tempfile.mkdtemp(prefix="aztrail-securitylake-run-s3-")
        env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b",
                   AWS_REGION="us-east-1")
        run = subprocess.run(
            [BIN, "run", "--dir", os.path.join(tmp, "run"), "--example-records", "200", "--destination", "securitylake",
             "--staging-bucket", "staging", "--queue-url", work, "--failure-queue-url", failures, "--s3-path-style",
             "--account-id", ACCOUNT],
            capture_output=True, text=True, env=env,
        )
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)["securitylake"]
        assert out["batches"]["events"] == 1200 and out["left"] == 0, out
        files = sorted(pathlib.Path(tmp, "run", "securitylake").rglob("*.parquet"))
        assert sum(pq.read_table(f, partitioning=None).num_rows for f in files) == 1200
        assert "Messages" not in sqs.receive_message(QueueUrl=work, WaitTimeSeconds=1), "every message deleted"
