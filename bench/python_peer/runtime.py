"""A minimal Lambda runtime loop for the Python peer (what awslambdaric does, without it):
import the handler (init), then GET /invocation/next, call the handler, POST the result.

Usage: python runtime.py   (with AWS_LAMBDA_RUNTIME_API=host:port and the handler's variables)
"""
import json
import os
import sys
import traceback
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def post(path, payload, headers=None):
    data = json.dumps(payload).encode()
    request = urllib.request.Request(f"{API}{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request) as reply:
        reply.read()


class Context:
    def __init__(self, request_id, deadline_ms, arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        import time

        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import handler
    except Exception as e:  # init failure, as the real runtime reports it
        post("/init/error", {"errorMessage": str(e), "errorType": type(e).__name__},
             {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        raise
    while True:
        with urllib.request.urlopen(f"{API}/invocation/next") as reply:
            request_id = reply.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline = int(reply.headers.get("Lambda-Runtime-Deadline-Ms", "0"))
            arn = reply.headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
            event = json.loads(reply.read())
        try:
            result = handler.lambda_handler(event, Context(request_id, deadline, arn))
        except Exception as e:
            post(f"/invocation/{request_id}/error",
                 {"errorMessage": str(e), "errorType": type(e).__name__,
                  "stackTrace": traceback.format_exc().splitlines()},
                 {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        post(f"/invocation/{request_id}/response", result)


if __name__ == "__main__":
    main()
