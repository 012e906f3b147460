"""The local lake through boto3's cloudtrail-data client: a client no one here wrote.

Starts `aztrail lake serve` on a free port (the binary named by AZTRAIL_BIN), sends events made
by `aztrail gen | aztrail transform`, and stops the server it started, by PID.
"""

import json
import os
import signal
import subprocess
import tempfile

import boto3
import botocore.config
import pytest

BIN = os.environ.get("AZTRAIL_BIN", "target/debug/aztrail")
CHANNEL = "arn:aws:cloudtrail:us-east-1:000000000000:channel/aztrail-local"


@pytest.fixture(scope="module")
def lake():
    tmp = tempfile.mkdtemp(prefix="aztrail-boto3-")
    db = os.path.join(tmp, "lake.db")
    proc = subprocess.Popen(
        [BIN, "lake", "serve", "--listen", "127.0.0.1:0", "--db", db, "--tps", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, proc.stderr.read())
        yield url, db
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.fixture(scope="module")
def client(lake):
    url, _ = lake
    return boto3.client(
        "cloudtrail-data",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="secret",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def generated_events(n, seed):
    records = subprocess.run(
        [BIN, "gen", "--records", str(n), "--seed", str(seed)], check=True, capture_output=True
    ).stdout
    out = subprocess.run([BIN, "transform"], input=records, check=True, capture_output=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_batches_are_accepted_and_queryable(client, lake):
    events = generated_events(150, 5)
    accepted = []
    for i in range(0, len(events), 100):
        resp = client.put_audit_events(channelArn=CHANNEL, auditEvents=events[i : i + 100])
        assert resp["failed"] == []
        accepted += [s["id"] for s in resp["successful"]]
    assert accepted == [e["id"] for e in events]
    _, db = lake
    out = subprocess.run(
        [BIN, "lake", "query", "--db", db, "--format", "json",
         "SELECT eventData.uid, eventData.recipientaccountid FROM store WHERE eventData.uid IS NOT NULL"],
        check=True, capture_output=True, text=True,
    ).stdout
    rows = json.loads(out)
    assert sorted(r["uid"] for r in rows) == sorted(accepted)
    assert {r["recipientaccountid"] for r in rows} == {"000000000000"}


def test_modelled_errors_are_boto3_exceptions(client):
    event = generated_events(1, 6)[0]
    with pytest.raises(client.exceptions.ChannelNotFound):
        client.put_audit_events(
            channelArn="arn:aws:cloudtrail:us-east-1:000000000000:channel/missing", auditEvents=[event]
        )
    with pytest.raises(client.exceptions.InvalidChannelARN):
        client.put_audit_events(channelArn="arn:aws:s3:::bucket", auditEvents=[event])
    with pytest.raises(client.exceptions.DuplicatedAuditEventId):
        client.put_audit_events(channelArn=CHANNEL, auditEvents=[event, event])


def test_per_event_failures(client):
    good, tampered = generated_events(2, 7)
    tampered["eventDataChecksum"] = "AAAA"
    resp = client.put_audit_events(channelArn=CHANNEL, auditEvents=[good, tampered])
    assert [s["id"] for s in resp["successful"]] == [good["id"]]
    assert [(f["id"], f["errorCode"]) for f in resp["failed"]] == [(tampered["id"], "InvalidChecksum")]
