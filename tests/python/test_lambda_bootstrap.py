"""The binary as a Lambda function's bootstrap, against a stand-in for the Lambda Runtime API.

Lambda starts `bootstrap` with no arguments and AWS_LAMBDA_RUNTIME_API set; the function's
handler setting (`_HANDLER`) names what to run. This test serves one SQS batch on
/runtime/invocation/next, as Lambda would, and checks the answer posted back: the S3 test event is
done, the notification whose object cannot be read is listed in batchItemFailures, and one
embedded-metric-format line is printed. The process it started is stopped by PID.
"""

import json
import os
import queue
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIN = os.environ.get("AZTRAIL_BIN", "target/debug/aztrail")

EVENT = {
    "Records": [
        {
            "messageId": "m-test",
            "receiptHandle": "r1",
            "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "staging"}),
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        },
        {
            "messageId": "m-unreadable",
            "receiptHandle": "r2",
            "body": json.dumps(
                {
                    "Records": [
                        {
                            "eventSource": "aws:s3",
                            "eventName": "ObjectCreated:Put",
                            "eventTime": "2026-11-27T10:00:00.000Z",
                            "s3": {"bucket": {"name": "staging"}, "object": {"key": "staged/x/PT1H.json", "eTag": "e"}},
                        }
                    ]
                }
            ),
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        },
    ]
}


def test_bootstrap_answers_an_sqs_batch_with_partial_failures():
    answers = queue.Queue()
    served = threading.Event()

    class RuntimeApi(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            if served.is_set():
                # The next invocation never comes: hold the connection until the test ends.
                served.wait(60)
                threading.Event().wait(60)
                return
            served.set()
            body = json.dumps(EVENT).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 120_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:aztrail-load")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            answers.put((self.path, self.rfile.read(length).decode()))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
        "_HANDLER": "load",
        "AWS_LAMBDA_FUNCTION_NAME": "aztrail-load",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        # Nothing listens here: the staged object cannot be read.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "AZTRAIL_QUEUE_URL": "http://127.0.0.1:9/000000000000/work",
        "AZTRAIL_FAILURE_QUEUE_URL": "http://127.0.0.1:9/000000000000/failures",
        "AZTRAIL_CHANNEL_ARN": "arn:aws:cloudtrail:us-east-1:000000000000:channel/aztrail-local",
    }
    proc = subprocess.Popen([BIN], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path, body = answers.get(timeout=60)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        server.shutdown()
    assert path.endswith("/runtime/invocation/req-1/response"), (path, body, err)
    assert json.loads(body) == {"batchItemFailures": [{"itemIdentifier": "m-unreadable"}]}
    metrics = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(metrics) == 1, out
    m = metrics[0]
    assert m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "aztrail"
    assert m["Function"] == "aztrail-load"
    assert (m["Messages"], m["MessagesLeft"]) == (2, 1)
    assert "staged/x/PT1H.json" in err
