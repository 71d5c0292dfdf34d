"""Verifies Herald's webhook signatures independently of Herald's code.

Run by tests/signatures.rs and by the server's end-to-end signature test. Reads one JSON
document on stdin:

    {"known_answer": {"secret": "whsec_...", "msg_id": "...", "timestamp": 1700000000, "body": "..."},
     "cases": [{"secret": "whsec_...", "headers": {...}, "body": "..."}, ...]}

and writes one JSON document on stdout:

    {"known_answer": {"v0": "<hex>", "v1": "v1,<base64>"},
     "results": [{"standard": true, "standard_error": null, "v0": true}, ...]}

`known_answer` is optional. A case's `secret` is the signing secret as the user sees it (the
`whsec_...` string, or a campaign webhook's own text); a case may add `standard_secret`, the
`whsec_...` form a Standard Webhooks library is configured with when that differs (a text
secret `s` becomes `whsec_` + base64 of its UTF-8 bytes). Header names may be of any case.

Standard Webhooks signatures are checked by the `standardwebhooks` package from PyPI (its
`Webhook.verify`, which also checks the timestamp is within five minutes); Herald's `v0`
signatures by the standard library's `hmac`, from the recipe alone: HMAC-SHA256 of
`v0:<timestamp>:<raw body>` keyed with the secret string's UTF-8 bytes, as in README.md.
"""

import hashlib
import hmac
import json
import sys
import time
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verify_herald_v0(secret: str, headers, raw_body: bytes) -> bool:
    headers = {name.lower(): value for name, value in headers.items()}
    timestamp = headers["x-herald-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:  # refuse replays of old requests
        return False
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, given.strip()) for given in headers["x-herald-signature"].split(","))


def verify_standard(secret: str, headers, raw_body: bytes):
    try:
        Webhook(secret).verify(raw_body, headers, json_parse=False)
        return True, None
    except WebhookVerificationError as e:
        return False, str(e)


def main() -> None:
    request = json.load(sys.stdin)
    answer = {}

    ka = request.get("known_answer")
    if ka is not None:
        body = ka["body"].encode()
        v0 = hmac.new(ka["secret"].encode(), f"v0:{ka['timestamp']}:".encode() + body, hashlib.sha256).hexdigest()
        # The library's own signing function, for a timestamp too old for `verify` to accept.
        at = datetime.fromtimestamp(ka["timestamp"], tz=timezone.utc)
        v1 = Webhook(ka["secret"]).sign(ka["msg_id"], at, ka["body"])
        answer["known_answer"] = {"v0": v0, "v1": v1}

    results = []
    for case in request["cases"]:
        raw_body = case["body"].encode()
        standard_secret = case.get("standard_secret", case["secret"])
        standard, standard_error = verify_standard(standard_secret, case["headers"], raw_body)
        results.append(
            {
                "standard": standard,
                "standard_error": standard_error,
                "v0": verify_herald_v0(case["secret"], case["headers"], raw_body),
            }
        )
    answer["results"] = results

    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
