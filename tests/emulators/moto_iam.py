"""moto server (DynamoDB, SSM) that enforces IAM the way AWS does for the calls this service makes.

moto's own IAM access control (`INITIAL_NO_AUTH_ACTION_COUNT`, set to 0 here: every request
is checked) verifies the signature and evaluates the caller's policies, but it asks about one
action per request (`dynamodb:TransactWriteItems`, which IAM does not have) on the resource
`*` (so a policy naming a table ARN would allow nothing). AWS authorizes these APIs per item
and per resource, as the DynamoDB and SSM permission references state:

* GetItem, PutItem, UpdateItem, DeleteItem, Query, Scan, DescribeTable, CreateTable, ...:
  the action of the same name on the table's ARN (Query and Scan on an index: the index's ARN);
* BatchWriteItem / BatchGetItem: `dynamodb:BatchWriteItem` / `dynamodb:BatchGetItem` on every
  table of the request;
* TransactWriteItems: each item's own action (Put -> PutItem, Update -> UpdateItem,
  Delete -> DeleteItem, ConditionCheck -> ConditionCheckItem) on its table; TransactGetItems:
  GetItem on each table;
* SSM GetParameters: `ssm:GetParameters` on every parameter's ARN.

So this wrapper keeps moto's signature check and policy evaluation (moto.iam.access_control)
and only feeds it those (action, resource) pairs, each checked on its own: one denied pair
fails the whole request with AccessDeniedException, as in AWS. It is stricter than moto alone,
never kinder. Every decision is logged per role, so a test can compare what the code used with
what the template granted.

Roles are made as Lambda makes a function's credentials: the role (trust policy, inline
policies, managed policy ARNs, from the transformed template) is created and then assumed, and
the temporary keys go to the function's environment. Endpoints (not AWS APIs, so no
credentials and nothing for moto to count):

    POST /_pss/iam/roles   {"RoleName": ..., "Properties": <AWS::IAM::Role Properties>}
                           -> {"AccessKeyId", "SecretAccessKey", "SessionToken"}
    GET  /_pss/iam/log     -> [{"role", "action", "resource", "allowed"}, ...]

Usage: moto_iam.py --port PORT [--host 127.0.0.1]
"""
import argparse
import json
import os

# Before moto reads its settings: check every request, and know AWS's managed policies (the
# transformed template attaches AWSLambdaBasicExecutionRole and AWSXrayWriteOnlyAccess).
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

from werkzeug.serving import run_simple  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
from moto.iam.access_control import IAMRequest  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sts.models import sts_backends  # noqa: E402

ACCOUNT = "123456789012"
PARTITION = "aws"
DECISIONS = []

TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def table_arn(region, table, index=None):
    arn = f"arn:{PARTITION}:dynamodb:{region}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def parameter_arn(region, name):
    # A parameter's ARN is "parameter" followed by its name; a name without a leading slash
    # gets one.
    path = name if name.startswith("/") else "/" + name
    return f"arn:{PARTITION}:ssm:{region}:{ACCOUNT}:parameter{path}"


def required_permissions(service, action, params, region):
    """The (action, resource) pairs AWS authorizes for one request; None: not modelled here."""
    if service == "dynamodb":
        if action == "BatchWriteItem" or action == "BatchGetItem":
            return [(action, table_arn(region, t)) for t in params.get("RequestItems", {})]
        if action == "TransactWriteItems":
            pairs = []
            for item in params.get("TransactItems", []):
                for kind, op in item.items():
                    pairs.append((TRANSACT_WRITE_ACTIONS[kind], table_arn(region, op["TableName"])))
            return pairs
        if action == "TransactGetItems":
            return [
                ("GetItem", table_arn(region, item["Get"]["TableName"]))
                for item in params.get("TransactItems", [])
            ]
        if "TableName" in params:
            return [(action, table_arn(region, params["TableName"], params.get("IndexName")))]
        return [(action, "*")]
    if service == "ssm":
        if action == "GetParameters":
            return [(action, parameter_arn(region, n)) for n in params.get("Names", [])]
        if action in ("GetParameter", "PutParameter", "DeleteParameter"):
            return [(action, parameter_arn(region, params["Name"]))]
        return [(action, "*")]
    return None


def request_params(response):
    params = getattr(response, "params", None)
    if isinstance(params, dict) and params:
        return params
    body = getattr(response, "body", None)
    if isinstance(body, dict):
        return body
    try:
        return json.loads(response.raw_body or b"{}")
    except ValueError:
        return {}


def principal_of(iam_request):
    key = iam_request._access_key
    return getattr(key, "_owner_role_name", None) or getattr(key, "_owner_user_name", "?")


original_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def authorize(self, resource="*"):
    action = self._get_action()
    pairs = required_permissions(self.service_name, action, request_params(self), self.region)
    if pairs is None:
        return original_authorize(self, resource)
    path = self.raw_path
    for iam_action, arn in pairs:
        iam_request = IAMRequest(
            account_id=self.current_account,
            method=self.method,
            path=path,
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=iam_action,
        )
        iam_request.check_signature()
        entry = {
            "role": principal_of(iam_request),
            "action": f"{self.service_name}:{iam_action}",
            "resource": arn,
            "allowed": True,
        }
        try:
            iam_request.check_action_permitted(arn)
        except Exception:
            entry["allowed"] = False
            DECISIONS.append(entry)
            raise AccessDenied(entry, iam_request)
        DECISIONS.append(entry)


class AccessDenied(JsonRESTError):
    """What DynamoDB and SSM answer (HTTP 400, JSON protocol), rather than moto's generic XML
    403, so the SDK sees the error it would see in AWS."""

    code = 400

    def __init__(self, entry, iam_request):
        super().__init__(
            "com.amazon.coral.service#AccessDeniedException",
            f"User: {iam_request._access_key.arn} is not authorized to perform: "
            f"{entry['action']} on resource: {entry['resource']} because no "
            "identity-based policy allows the action",
        )


ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize


def create_role(spec):
    """Creates a role from CloudFormation `AWS::IAM::Role` properties (intrinsics resolved)
    and assumes it, as Lambda does for a function's execution role."""
    props = spec["Properties"]
    name = spec["RoleName"]
    iam = iam_backends[ACCOUNT][PARTITION]
    role = iam.create_role(
        role_name=name,
        assume_role_policy_document=json.dumps(props["AssumeRolePolicyDocument"]),
        path="/",
        permissions_boundary=None,
        description="",
        tags=[],
        max_session_duration=None,
    )
    for policy in props.get("Policies", []):
        document = dict(policy["PolicyDocument"])
        # SAM writes role policies without a Version, which IAM takes as 2008-10-17 (the same
        # evaluation without policy variables, which these policies do not use); moto's
        # validator wants one.
        document.setdefault("Version", "2012-10-17")
        iam.put_role_policy(name, policy["PolicyName"], json.dumps(document))
    for arn in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(arn, name)
    assumed = sts_backends[ACCOUNT][PARTITION].assume_role(
        region_name="us-east-1",
        role_session_name=name,
        role_arn=role.arn,
        policy=None,
        duration=3600,
        external_id=None,
    )
    return {
        "AccessKeyId": assumed.access_key_id,
        "SecretAccessKey": assumed.secret_access_key,
        "SessionToken": assumed.session_token,
    }


def make_app():
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_pss/iam/"):
            return moto_app(environ, start_response)
        request = Request(environ)
        try:
            if path == "/_pss/iam/roles" and request.method == "POST":
                body = create_role(json.loads(request.get_data()))
            elif path == "/_pss/iam/log" and request.method == "GET":
                body = DECISIONS
            else:
                return Response("not found", status=404)(environ, start_response)
        except Exception as e:  # a bad spec is the test's bug: say what it was
            return Response(f"{type(e).__name__}: {e}", status=400)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    # One request at a time, as tests/emulators/moto_serial.py explains (transactions).
    run_simple(args.host, args.port, make_app(), threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
