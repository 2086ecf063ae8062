"""moto server, serving one request at a time.

moto's TransactWriteItems is not atomic across threads: a failed transaction rolls back by
restoring a copy of the whole table taken when it started, erasing whatever another thread
committed meanwhile. Real DynamoDB serializes conflicting transactions. Serving requests one at
a time gives that guarantee back; moto is bound by Python's GIL anyway, so little is lost.

Usage: moto_serial.py --port PORT [--host 127.0.0.1]
"""
import argparse
import os

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
