"""The benchmark's Python peer: a Stripe webhook handler written the way a typical Lambda team
would write it (Function URL in front, the official `stripe` package for the signature, boto3
for DynamoDB). It is measured side by side with functions/stripe-webhook by scripts/bench.

What it does per event, and what it does not (so the comparison is read fairly):
  * verifies `Stripe-Signature` with `stripe.Webhook.construct_event` (HMAC-SHA256, 300 s);
  * a conditional put of the event marker (`EVT#<id>` / `EVENT`, attribute_not_exists), so a
    redelivery is acknowledged without a second write;
  * a put of the subscription row (`ORG#<org>` / `SUB#<id>`) taken from the event payload.
It does NOT re-fetch the object from Stripe, recompute entitlements or write in one
transaction, all of which the Rust function does; it does less work per event.
"""
import json
import os
import time
from decimal import Decimal

import boto3
import stripe
from botocore.exceptions import ClientError

# Module level, as every Lambda guide recommends: created once per container (cold start).
# The endpoint comes from AWS_ENDPOINT_URL_DYNAMODB (moto in the benchmark).
TABLE = boto3.resource("dynamodb").Table(os.environ["BILLING_TABLE"])
WEBHOOK_SECRET = os.environ["STRIPE_WEBHOOK_SECRETS"].split(",")[0].strip()
MARKER_TTL_SECONDS = 30 * 86_400


def _response(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def lambda_handler(event, context):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body).decode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        stripe_event = stripe.Webhook.construct_event(
            body, headers.get("stripe-signature", ""), WEBHOOK_SECRET
        )
    except (ValueError, stripe.SignatureVerificationError):
        return _response(400, {"error": "invalid_signature"})

    now = int(time.time())
    try:
        TABLE.put_item(
            Item={
                "PK": f"EVT#{stripe_event['id']}",
                "SK": "EVENT",
                "event_type": stripe_event["type"],
                "processed_at": now,
                "expires_at": now + MARKER_TTL_SECONDS,
            },
            ConditionExpression="attribute_not_exists(PK)",
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return _response(200, {"received": True, "outcome": "duplicate"})
        raise

    obj = stripe_event["data"]["object"]
    if stripe_event["type"].startswith("customer.subscription."):
        metadata = obj["metadata"].to_dict() if "metadata" in obj and obj["metadata"] else {}
        org = metadata.get("organization_id")
        if org:
            TABLE.put_item(
                Item={
                    "PK": f"ORG#{org}",
                    "SK": f"SUB#{obj['id']}",
                    "status": obj["status"],
                    "customer_id": obj["customer"],
                    "fetched_at": Decimal(time.time_ns() // 1000),
                    "data": json.dumps(obj.to_dict(), default=str),
                }
            )
    return _response(200, {"received": True, "outcome": "processed"})
