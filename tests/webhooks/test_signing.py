"""Standard Webhooks signatures: the spec's test vector, and the reference verifier agrees."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from headway.webhooks import generate_secret, sign
from headway.webhooks.signing import InvalidSecret, headers, secret_key

# The published vector (standard-webhooks/standard-webhooks, libraries/python/tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_test_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_reference_library_verifies_our_headers() -> None:
    secret = generate_secret()
    body = b'{"type":"execution.completed","data":{"id":1}}'
    sent = headers([secret], "msg_abc", int(time.time()), body)
    assert Webhook(secret).verify(body, sent) == {"type": "execution.completed", "data": {"id": 1}}
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", sent)


def test_two_secrets_during_rotation_each_verify() -> None:
    old, new = generate_secret(), generate_secret()
    body = b"{}"
    sent = headers([new, old], "msg_rot", int(time.time()), body)
    assert len(sent["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, sent)
    Webhook(new).verify(body, sent)


def test_generated_secrets_are_whsec_base64_of_24_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 24
    assert secret != generate_secret()


@pytest.mark.parametrize(
    "bad", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ="]
)
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSecret):
        secret_key(bad)
