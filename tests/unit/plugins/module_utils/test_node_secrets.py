"""Our standard-library SigV4 signs exactly as botocore does."""

import datetime
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ansible_collections.ollama_cloud.engine.plugins.module_utils.node_secrets import sigv4_headers

NOW = datetime.datetime(2026, 11, 22, 12, 30, 45, tzinfo=datetime.timezone.utc)


def botocore_authorization(creds, body, target, token=None):
    request = AWSRequest(
        method="POST",
        url="https://ssm.eu-west-1.amazonaws.com/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    signer = SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], token), "ssm", "eu-west-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        signer.add_auth(request)
    return request.headers["Authorization"]


def test_signature_matches_botocore_with_session_token():
    creds = {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG", "Token": "FwoGZX"}
    body = b'{"Name": "/oce/prod/tailscale", "WithDecryption": true}'
    ours = sigv4_headers(creds, "eu-west-1", "ssm", "ssm.eu-west-1.amazonaws.com", body, "AmazonSSM.GetParameter", NOW)
    assert ours["authorization"] == botocore_authorization(creds, body, "AmazonSSM.GetParameter", "FwoGZX")
    assert ours["x-amz-security-token"] == "FwoGZX"
    assert ours["x-amz-date"] == "20261122T123045Z"


def test_signature_matches_botocore_without_token():
    creds = {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "secret", "Token": None}
    body = b"{}"
    ours = sigv4_headers(creds, "eu-west-1", "ssm", "ssm.eu-west-1.amazonaws.com", body, "AmazonSSM.GetParameter", NOW)
    assert "x-amz-security-token" not in ours
    assert ours["authorization"] == botocore_authorization(creds, body, "AmazonSSM.GetParameter")
