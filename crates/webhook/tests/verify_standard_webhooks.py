"""Verifies Herald's webhook signatures independently of Herald's code.

Run by tests/signatures.rs. Reads one JSON document on stdin:

    {"known_answer": {"secret": "whsec_...", "msg_id": "...", "timestamp": 1700000000, "body": "..."},
     "cases": [{"secret": "whsec_...", "headers": {...}, "body": "..."}, ...]}

and writes one JSON document on stdout:

    {"known_answer": {"v0": "<hex>", "v1": "v1,<base64>"},
     "results": [{"standard": true, "standard_error": null, "v0": true}, ...]}

Standard Webhooks signatures are checked by the `standardwebhooks` package from PyPI (its
`Webhook.verify`, which also checks the timestamp is within five minutes); Herald's `v0`
signatures by the standard library's `hmac`, exactly as the receiver example in
src/sign.rs shows.
"""

import base64
import hashlib
import hmac
import json
import sys
import time
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verify_herald_v0(secret: str, headers, raw_body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    timestamp = headers["X-Herald-Timestamp"]
    if abs(time.time() - int(timestamp)) > 300:  # refuse replays of old requests
        return False
    expected = hmac.new(key, b"v0:" + timestamp.encode() + b":" + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, given.strip()) for given in headers["X-Herald-Signature"].split(","))


def verify_standard(secret: str, headers, raw_body: bytes):
    try:
        Webhook(secret).verify(raw_body, headers, json_parse=False)
        return True, None
    except WebhookVerificationError as e:
        return False, str(e)


def main() -> None:
    request = json.load(sys.stdin)

    ka = request["known_answer"]
    key = base64.b64decode(ka["secret"].removeprefix("whsec_"))
    body = ka["body"].encode()
    v0 = hmac.new(key, f"v0:{ka['timestamp']}:".encode() + body, hashlib.sha256).hexdigest()
    # The library's own signing function, for a timestamp too old for `verify` to accept.
    at = datetime.fromtimestamp(ka["timestamp"], tz=timezone.utc)
    v1 = Webhook(ka["secret"]).sign(ka["msg_id"], at, ka["body"])

    results = []
    for case in request["cases"]:
        raw_body = case["body"].encode()
        standard, standard_error = verify_standard(case["secret"], case["headers"], raw_body)
        results.append(
            {
                "standard": standard,
                "standard_error": standard_error,
                "v0": verify_herald_v0(case["secret"], case["headers"], raw_body),
            }
        )

    json.dump({"known_answer": {"v0": v0, "v1": v1}, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
