# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read one secret on the node itself, with the node's own cloud identity.

Runs on the node, where neither boto3 nor google-auth may be installed: the standard library
only. AWS requests are signed with Signature Version 4 using the instance role's credentials
from IMDSv2; GCP requests carry the service account's token from the metadata server. The
secret never passes through the controller, user data or instance metadata.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.parse

TIMEOUT = 10

try:
    from ansible.module_utils.urls import open_url
except ImportError:  # first boot (first_boot.py): the node has no Ansible yet, only Python
    import urllib.request

    def open_url(url, method="GET", headers=None, data=None, timeout=TIMEOUT):
        request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        return urllib.request.build_opener().open(request, timeout=timeout)


SOURCES = ("aws_ssm", "aws_secretsmanager", "gcp_secretmanager")
AWS_IMDS = "http://169.254.169.254"
GCP_METADATA = "http://metadata.google.internal"


class SecretError(Exception):
    """A sentence a person can act on; never carries the secret or credentials."""


def _http(what, url, method="GET", headers=None, data=None, missing_ok=False):
    """The answer's body; with ``missing_ok``, an HTTP 404 is an empty one."""
    try:
        with open_url(url, method=method, headers=headers or {}, data=data, timeout=TIMEOUT) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if missing_ok and exc.code == 404:
            return b""
        detail = ""
        try:
            body = json.loads(exc.read() or b"{}")
            detail = body.get("message") or body.get("Message") or (body.get("error") or {}).get("message") or ""
            kind = body.get("__type", "").split("#")[-1]
            detail = f"{kind}: {detail}" if kind else detail
        except ValueError:
            pass
        raise SecretError(f"{what} failed with HTTP {exc.code}{': ' + detail if detail else ''}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SecretError(f"{what} failed: {reason}") from None


# ---------------------------------------------------------------- AWS


def aws_credentials(imds=AWS_IMDS):
    """The instance role's credentials (IMDSv2), or the environment's when set."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {
            "AccessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
            "Token": os.environ.get("AWS_SESSION_TOKEN"),
        }
    token = _imds_token(imds)
    # The IMDS answers 404 here when the instance has no role.
    listed = _imds_get(imds, token, "/latest/meta-data/iam/security-credentials/", missing_ok=True)
    role = listed.decode().split("\n")[0].strip()
    if not role:
        raise SecretError("the instance has no IAM role: attach the deployment's instance profile to read its secret")
    creds = json.loads(_imds_get(imds, token, "/latest/meta-data/iam/security-credentials/" + role))
    if creds.get("Code", "Success") != "Success" or not (creds.get("AccessKeyId") and creds.get("SecretAccessKey")):
        raise SecretError(
            f"the instance's role {role} gave no credentials ({creds.get('Code')}: {creds.get('Message', '')}): "
            "check that the role's trust policy lets ec2.amazonaws.com assume it"
        )
    return creds


def aws_region(imds=AWS_IMDS):
    return _imds_get(imds, _imds_token(imds), "/latest/meta-data/placement/region").decode().strip()


def _imds_token(imds):
    return _http(
        "asking the instance metadata service (IMDSv2) for a token",
        imds + "/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
    ).decode()


def _imds_get(imds, token, path, missing_ok=False):
    what = "reading " + path + " from the instance metadata service"
    return _http(what, imds + path, headers={"X-aws-ec2-metadata-token": token}, missing_ok=missing_ok)


def _sign(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(creds, region, service, host, body, target, now=None):
    """Headers of a signed AWS JSON-protocol POST to ``/`` (Signature Version 4)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": target,
    }
    if creds.get("Token"):
        headers["x-amz-security-token"] = creds["Token"]
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{n}:{headers[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(("AWS4" + creds["SecretAccessKey"]).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds['AccessKeyId']}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


# service name in the signature, JSON target, request body, and where the value is in the answer
_AWS_CALLS = {
    "aws_ssm": ("ssm", "AmazonSSM.GetParameter", lambda n: {"Name": n, "WithDecryption": True}),
    "aws_secretsmanager": ("secretsmanager", "secretsmanager.GetSecretValue", lambda n: {"SecretId": n}),
}


def aws_secret(source, name, region=None, endpoint=None, imds=AWS_IMDS):
    service, target, body_of = _AWS_CALLS[source]
    region = region or os.environ.get("AWS_REGION") or aws_region(imds)
    endpoint = (endpoint or os.environ.get("AWS_ENDPOINT_URL") or f"https://{service}.{region}.amazonaws.com").rstrip(
        "/"
    )
    body = json.dumps(body_of(name)).encode()
    host = urllib.parse.urlparse(endpoint).netloc
    headers = sigv4_headers(aws_credentials(imds), region, service, host, body, target)
    what = f"reading {name} from {'SSM Parameter Store' if service == 'ssm' else 'Secrets Manager'} in {region}"
    answer = json.loads(_http(what, endpoint + "/", method="POST", headers=headers, data=body))
    value = answer.get("Parameter", {}).get("Value") if service == "ssm" else answer.get("SecretString")
    if not value:
        raise SecretError(f"{what}: it has no text value")
    return value


# ---------------------------------------------------------------- GCP


def _gcp_metadata(what, metadata, path):
    return _http(what, metadata + "/computeMetadata/v1/" + path, headers={"Metadata-Flavor": "Google"})


def gcp_secret_path(project, name):
    """projects/P/secrets/S for ``name`` given as that path or as the id S of ``project``'s secret:
    the one reading of a secret's name, for the node and the controller's checks alike."""
    return name if name.startswith("projects/") else f"projects/{project}/secrets/{name}"


def gcp_secret(name, endpoint=None, metadata=GCP_METADATA):
    """``name``: projects/P/secrets/S[/versions/V] (V defaults to latest), or S: a secret of the
    node's own project."""
    if not name.startswith("projects/"):
        project = _gcp_metadata("asking the metadata server for the node's project", metadata, "project/project-id")
        name = gcp_secret_path(project.decode().strip(), name)
    if "/versions/" not in name:
        name += "/versions/latest"
    token = json.loads(
        _gcp_metadata(
            "asking the metadata server for the service account's token",
            metadata,
            "instance/service-accounts/default/token",
        )
    )
    base = (endpoint or "https://secretmanager.googleapis.com").rstrip("/")
    answer = json.loads(
        _http(
            f"reading {name} from Secret Manager",
            f"{base}/v1/{name}:access",
            headers={"Authorization": "Bearer " + token["access_token"]},
        )
    )
    return base64.b64decode(answer["payload"]["data"]).decode()


def read_secret(source, name, region=None, endpoint=None, metadata_endpoint=None):
    """The secret's text, from ``source`` (one of SOURCES), read with the node's own identity."""
    if source not in SOURCES:
        raise SecretError(f"unknown secret source {source!r}: use one of {', '.join(SOURCES)}")
    if source == "gcp_secretmanager":
        return gcp_secret(name, endpoint, metadata_endpoint or GCP_METADATA).strip()
    return aws_secret(source, name, region, endpoint, metadata_endpoint or AWS_IMDS).strip()
