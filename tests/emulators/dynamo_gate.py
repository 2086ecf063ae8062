"""A pass-through proxy in front of moto that can hold one DynamoDB request, so a test can pause
a sync between its read and its write, let another writer commit, then let it go on.

Every request is forwarded unchanged to --upstream (moto). A hold names a DynamoDB operation and
strings its JSON body must contain; the first matching request waits before it is forwarded
(so it runs, as it would on a slow network, after whatever the test does meanwhile).

Control endpoints (tests only):
  POST /_gate/hold     {"operation": "GetItem", "contains": ["ENTITLEMENTS", "ORG#o1"]}
  GET  /_gate/stats    {"held": n, "forwarding": n}: requests waiting, requests at moto now
  POST /_gate/release  let every held request go on

Usage: dynamo_gate.py --port PORT --upstream http://127.0.0.1:MOTO_PORT
"""
import argparse
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
HOLDS: list = []  # armed holds: {"operation", "contains", "event"}
STATE = {"held": 0, "forwarding": 0}
RELEASE = threading.Event()
UPSTREAM = {"url": ""}


def matching_hold(operation: str, body: str):
    for hold in HOLDS:
        if hold["operation"] == operation and all(s in body for s in hold["contains"]):
            HOLDS.remove(hold)
            return hold
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without this a kept-alive client waits ~40 ms for each.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: bytes, headers=()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def control(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with LOCK:
            if method == "POST" and self.path == "/_gate/hold":
                spec = json.loads(raw)
                HOLDS.append({"operation": spec["operation"], "contains": spec.get("contains", []),
                              "event": threading.Event()})
                body = b"{}"
            elif method == "GET" and self.path == "/_gate/stats":
                body = json.dumps(STATE).encode()
            elif method == "POST" and self.path == "/_gate/release":
                for waiting in list(WAITING):
                    waiting.set()
                WAITING.clear()
                body = b"{}"
            else:
                return self.reply(404, b"{}")
        self.reply(200, body, [("Content-Type", "application/json")])

    def do_GET(self):
        if self.path.startswith("/_gate/"):
            return self.control("GET")
        self.forward("GET")

    def do_POST(self):
        if self.path.startswith("/_gate/"):
            return self.control("POST")
        self.forward("POST")

    def forward(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        operation = target.rsplit(".", 1)[-1]
        with LOCK:
            hold = matching_hold(operation, raw.decode("utf-8", "replace"))
            if hold is not None:
                STATE["held"] += 1
                WAITING.append(hold["event"])
        if hold is not None:
            hold["event"].wait(timeout=60)
            with LOCK:
                STATE["held"] -= 1
        with LOCK:
            STATE["forwarding"] += 1
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(UPSTREAM["url"] + self.path, data=raw, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status, body, answer_headers = answer.status, answer.read(), answer.getheaders()
            except urllib.error.HTTPError as err:
                status, body, answer_headers = err.code, err.read(), err.headers.items()
        finally:
            with LOCK:
                STATE["forwarding"] -= 1
        keep = [(k, v) for k, v in answer_headers
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")]
        self.reply(status, body, keep)


WAITING: list = []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    UPSTREAM["url"] = args.upstream.rstrip("/")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
