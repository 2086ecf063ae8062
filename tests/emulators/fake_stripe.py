"""A small stateful Stripe API for what localstripe lacks (prices, Checkout and billing-portal
sessions, current-shape objects). It answers with Stripe's official example objects
(tests/fixtures/stripe/*.latest.json) overlaid with the fields a request sets, and records every
request (form parameters, idempotency key, API version) so tests can assert the exact call.

With --upstream URL (the local stack) it owns only what localstripe lacks (Checkout and
billing-portal sessions, prices, products) and forwards every other call to that URL.

Control endpoints (tests only):
  POST   /_test/objects          JSON object with "id": store or replace it
  DELETE /_test/objects/<id>     forget one object
  GET    /_test/requests         every API request received so far
  POST   /_test/fail             {"status": 503, "count": 2}: the next N API calls fail
  POST   /_test/reset            forget everything
"""
import argparse
import copy
import itertools
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import local_hosted  # the local stack's Checkout and portal pages

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "stripe")
LOCK = threading.Lock()
OBJECTS: dict = {}
REQUESTS: list = []
IDEMPOTENT: dict = {}
FAIL = {"status": 0, "count": 0}
COUNTER = itertools.count(1)
UPSTREAM = {"url": None}
OWNED_PREFIXES = ("/v1/checkout/", "/v1/billing_portal/", "/v1/prices", "/v1/products")


def fixture(name: str) -> dict:
    with open(os.path.join(FIXTURES, f"{name}.latest.json")) as f:
        return json.load(f)


def new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(COUNTER):06d}{int(time.time() * 1000) % 100000:05d}"


def nested(form: dict) -> dict:
    """Turns `a[b][0]=x` keys into nested dicts (lists stay dicts keyed by index)."""
    out: dict = {}
    for key, value in form.items():
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def listing(data: list, url: str) -> dict:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def error(status: int, message: str, code: str = "resource_missing"):
    return status, {"error": {"type": "invalid_request_error", "code": code, "message": message}}


COLLECTIONS = {
    "subscriptions": "subscription",
    "invoices": "invoice",
    "customers": "customer",
    "payment_methods": "payment_method",
    "checkout/sessions": "checkout.session",
    "prices": "price",
    "products": "product",
}


def create(path: str, form: dict):
    params = nested(form)
    now = int(time.time())
    if path == "/v1/customers":
        obj = fixture("customer")
        obj.update(id=new_id("cus"), created=now, email=params.get("email"), name=params.get("name"),
                   metadata=params.get("metadata", {}), livemode=False)
        obj["invoice_settings"]["default_payment_method"] = None
    elif path == "/v1/checkout/sessions":
        obj = fixture("checkout.session")
        sid = new_id("cs_test")
        obj.update(id=sid, created=now, expires_at=now + 86400, mode=params.get("mode"),
                   customer=params.get("customer"), client_reference_id=params.get("client_reference_id"),
                   metadata=params.get("metadata", {}), success_url=params.get("success_url"),
                   cancel_url=params.get("cancel_url"), status="open", payment_status="unpaid",
                   subscription=None, url=f"https://checkout.stripe.test/c/pay/{sid}", livemode=False)
        local_hosted.on_checkout_session(obj, params)
    elif path == "/v1/billing_portal/sessions":
        obj = fixture("billing_portal.session")
        sid = new_id("bps")
        obj.update(id=sid, created=now, customer=params.get("customer"), return_url=params.get("return_url"),
                   url=f"https://billing.stripe.test/p/session/{sid}", livemode=False)
        local_hosted.on_portal_session(obj)
    elif path == "/v1/products":
        obj = fixture("product")
        obj.update(id=params.get("id") or new_id("prod"), created=now, name=params.get("name"),
                   description=params.get("description"), metadata=params.get("metadata", {}),
                   active=True, livemode=False)
    elif path == "/v1/prices":
        obj = fixture("price")
        key = params.get("lookup_key")
        if key and params.get("transfer_lookup_key") == "true":
            for other in OBJECTS.values():
                if other.get("object") == "price" and other.get("lookup_key") == key:
                    other["lookup_key"] = None
        elif key and any(o.get("object") == "price" and o.get("lookup_key") == key for o in OBJECTS.values()):
            return error(400, f"A price with lookup_key {key} already exists.", "lookup_key_exists")
        recurring = params.get("recurring", {})
        obj.update(id=new_id("price"), created=now, currency=params.get("currency"),
                   unit_amount=int(params.get("unit_amount", 0)), unit_amount_decimal=params.get("unit_amount"),
                   lookup_key=key, product=params.get("product"), metadata=params.get("metadata", {}),
                   active=True, livemode=False, type="recurring",
                   recurring={"interval": recurring.get("interval"), "interval_count": 1, "meter": None,
                              "trial_period_days": None, "usage_type": "licensed"})
    else:
        return None
    OBJECTS[obj["id"]] = obj
    return 200, obj


def update(path: str, form: dict):
    params = nested(form)
    for collection in ("prices", "products"):
        prefix = f"/v1/{collection}/"
        if path.startswith(prefix):
            obj = OBJECTS.get(path[len(prefix):])
            if obj is None:
                return error(404, "No such object")
            if "active" in params:
                obj["active"] = params["active"] == "true"
            for field in ("name", "description", "lookup_key"):
                if field in params:
                    obj[field] = params[field] or None
            if "metadata" in params:
                obj.setdefault("metadata", {}).update(params["metadata"])
            return 200, obj
    return None


def query_list(path: str, query: dict):
    collection = path[len("/v1/"):]
    kind = COLLECTIONS.get(collection)
    if kind is None:
        return None
    data = [o for o in OBJECTS.values() if o.get("object") == kind]
    if "customer" in query:
        data = [o for o in data if (o.get("customer") if isinstance(o.get("customer"), str)
                                    else (o.get("customer") or {}).get("id")) == query["customer"]]
    if kind == "payment_method" and "type" in query:
        data = [o for o in data if o.get("type") == query["type"]]
    if kind == "subscription" and query.get("status", "all") != "all":
        data = [o for o in data if o.get("status") == query["status"]]
    keys = [v for k, v in query.items() if k.startswith("lookup_keys")]
    if keys:
        data = [o for o in data if o.get("lookup_key") in keys]
    if "active" in query:
        data = [o for o in data if bool(o.get("active")) == (query["active"] == "true")]
    data.sort(key=lambda o: o.get("created") or 0, reverse=True)
    return 200, listing(data, path)


def get_one(path: str):
    for collection in sorted(COLLECTIONS, key=len, reverse=True):
        prefix = f"/v1/{collection}/"
        if path.startswith(prefix):
            obj = OBJECTS.get(path[len(prefix):])
            if obj is None or obj.get("object") != COLLECTIONS[collection]:
                return error(404, f"No such {COLLECTIONS[collection]}: '{path[len(prefix):]}'")
            return 200, obj
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = self.body()
        if local_hosted.handle(self, method, url, raw):
            return
        if url.path.startswith("/_test/"):
            return self.control(method, url.path, raw)
        if UPSTREAM["url"] and not url.path.startswith(OWNED_PREFIXES):
            return self.forward(method, raw)
        form = dict(parse_qsl(raw.decode())) if raw else {}
        query = dict(parse_qsl(url.query))
        key = self.headers.get("Idempotency-Key")
        with LOCK:
            REQUESTS.append({"method": method, "path": url.path, "query": query, "form": form,
                             "idempotency_key": key, "stripe_version": self.headers.get("Stripe-Version"),
                             "authorization": (self.headers.get("Authorization") or "")[:12]})
            if FAIL["count"] > 0:
                FAIL["count"] -= 1
                return self.reply(FAIL["status"], {"error": {"type": "api_error", "message": "injected failure"}})
            if not (self.headers.get("Authorization") or "").startswith("Bearer sk_test_"):
                return self.reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
            if method == "POST" and key and (url.path, key) in IDEMPOTENT:
                return self.reply(*IDEMPOTENT[(url.path, key)])
            if method == "GET":
                result = get_one(url.path) or query_list(url.path, query)
            else:
                result = create(url.path, form) or update(url.path, form)
            if result is None:
                result = error(404, f"Unrecognized request URL ({method}: {url.path})", "url_invalid")
            if method == "POST" and key:
                IDEMPOTENT[(url.path, key)] = (result[0], copy.deepcopy(result[1]))
            self.reply(*result)

    def forward(self, method: str, raw: bytes) -> None:
        import urllib.error
        import urllib.request
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type", "idempotency-key", "stripe-version")}
        request = urllib.request.Request(UPSTREAM["url"] + self.path, data=raw or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, body = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def control(self, method: str, path: str, raw: bytes) -> None:
        with LOCK:
            if method == "POST" and path == "/_test/objects":
                obj = json.loads(raw)
                OBJECTS[obj["id"]] = obj
                return self.reply(200, obj)
            if method == "DELETE" and path.startswith("/_test/objects/"):
                OBJECTS.pop(path.rsplit("/", 1)[1], None)
                return self.reply(200, {})
            if method == "GET" and path == "/_test/requests":
                return self.reply(200, REQUESTS)
            if method == "POST" and path == "/_test/fail":
                FAIL.update(json.loads(raw))
                return self.reply(200, FAIL)
            if method == "POST" and path == "/_test/reset":
                OBJECTS.clear(); REQUESTS.clear(); IDEMPOTENT.clear(); FAIL.update(status=0, count=0)
                return self.reply(200, {})
        self.reply(404, {"error": "unknown control call"})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--upstream", help="forward what this server does not own to this Stripe")
    args = parser.parse_args()
    UPSTREAM["url"] = args.upstream.rstrip("/") if args.upstream else None
    local_hosted.configure(UPSTREAM["url"], f"http://{args.host}:{args.port}", OBJECTS, LOCK)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
