# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GCP layer of our modules: auth options, credentials, the Compute REST client, errors as sentences.

The Compute Engine v1 REST API is called through google-auth's AuthorizedSession (requests).
Retries (cloud.retry, jittered backoff on 429, 5xx and the 403 of a rate limit), operation polling to a deadline
(cloud.wait_for) and the placement search (cloud.try_placements) are the ones the AWS layer
uses. Errors never carry a request body, a header or a token: only the method, the path and
what Google said, shortened and with anything that looks like a secret masked.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import uuid

from ansible.module_utils.basic import env_fallback

from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog, cloud, fleet

try:
    import google.auth
    import google.auth.exceptions
    import requests
    from google.auth import impersonated_credentials
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import service_account

    HAS_GOOGLE_AUTH = True
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    HAS_GOOGLE_AUTH = False

DEFAULT_ENDPOINT = "https://compute.googleapis.com/compute/v1/"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"

GCP_ARGS = {
    "project": {"type": "str", "fallback": (env_fallback, fleet.GCP_ENV["project"])},
    "auth_kind": {
        "type": "str",
        "choices": ["application", "serviceaccount", "anonymous"],
        "default": "application",
        "fallback": (env_fallback, fleet.GCP_ENV["auth_kind"]),
    },
    "service_account_file": {"type": "path", "fallback": (env_fallback, fleet.GCP_ENV["service_account_file"])},
    "impersonate_service_account": {
        "type": "str",
        "fallback": (env_fallback, fleet.GCP_ENV["impersonate_service_account"]),
    },
    "endpoint": {"type": "str", "fallback": (env_fallback, fleet.GCP_ENV["endpoint"])},
}

CREDENTIALS_HINT = (
    "run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, "
    "or use auth_kind=serviceaccount with service_account_file"
)

# Timeouts of every API call: connect, read (seconds).
TIMEOUT = (10, 60)
# Backoff of retried calls and the pause between operation polls; tests lower them. Compute
# Engine's rate limits are per minute: with equal jitter (RETRY_FLOOR) the retries of one call
# sleep at least 75 s and at most 151 s (cloud.retry_budget), so they outlast one quota window.
RETRY_ATTEMPTS, RETRY_BASE, RETRY_CAP, RETRY_FLOOR = 10, 1.0, 30.0, 0.5
QUOTA_WINDOW = 60.0
POLL_INTERVAL = 2.0

# Google answers a rate limit with HTTP 429 or with HTTP 403 and one of these reasons; any other
# 403 (forbidden, accessNotConfigured, ...) is final.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}

# Operation error codes that mean "not here, not now": the caller tries the next placement.
CAPACITY_CODES = {"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"}
# An insert over a quota: GPU quotas are per type and region (NVIDIA_T4_GPUS, NVIDIA_L4_GPUS), so
# the next option, another GPU type, may have one; Google's sentence names the quota and its limit.
QUOTA_CODES = {"QUOTA_EXCEEDED"}

# What to do, by Google's error reason (HTTP errors) or code (operation errors).
SENTENCES = {
    "authError": "GCP rejected the credentials: " + CREDENTIALS_HINT,
    "forbidden": "the credentials are not allowed to do this: grant the service account "
    "roles/compute.instanceAdmin.v1 (and roles/iam.serviceAccountUser for the node's service account)",
    "accessNotConfigured": "the Compute Engine API is not enabled in this project: "
    "gcloud services enable compute.googleapis.com",
    "notFound": "it does not exist",
    "alreadyExists": "a resource with this name already exists (not ours, or in another zone): choose another name",
    "rateLimitExceeded": "the API rate limit was hit and stayed hit: run fewer calls at once or retry later",
    "userRateLimitExceeded": "the API rate limit was hit and stayed hit: run fewer calls at once or retry later",
    "backendError": "Compute Engine had an internal error and kept having it: retry later",
    "invalid": "Compute Engine refused a parameter",
    "badRequest": "Compute Engine refused a parameter",
    "QUOTA_EXCEEDED": "the project's quota is used up (GPUs are counted per region): request a quota increase",
    "ZONE_RESOURCE_POOL_EXHAUSTED": "the zone has no capacity for this machine right now: try other zones",
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS": "the zone has no capacity for this machine right now: try other zones",
    "RESOURCE_NOT_FOUND": "a resource the request names does not exist",
    "conditionNotMet": "someone else changed it at the same time (its fingerprint moved on): run again",
    "resourceInUseByAnotherResource": "something still uses it: delete the deployment's nodes first "
    "(playbooks/destroy.yml does), or what GCP names below if it is not ours",
}

# Every instance status of compute.v1 (a unit test holds them to its discovery document) onto the
# fleet's node states. TERMINATED is GCE's word for stopped; PENDING is a Flex Start VM waiting
# for capacity; DEPROVISIONING is a halted VM being torn down.
STATES = {
    "PENDING": "pending",
    "PROVISIONING": "pending",
    "STAGING": "pending",
    "REPAIRING": "pending",
    "RUNNING": "running",
    "PENDING_STOP": "stopping",
    "STOPPING": "stopping",
    "SUSPENDING": "stopping",
    "DEPROVISIONING": "stopping",
    "TERMINATED": "stopped",
    "STOPPED": "stopped",
    "SUSPENDED": "stopped",
}

# Label keys Google's own services set (goog-ops-agent-policy, goog-ec-src, ...): never purged.
RESERVED_LABEL_PREFIXES = ("goog-",)

# GCP label rules: keys and values of at most 63 lowercase letters, digits, '_' and '-'; keys
# start with a letter.
_LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class HttpError(Exception):
    """A non-2xx answer, reduced to what we may show: status, reason, Google's message."""

    def __init__(self, status, reason, message):
        super().__init__(f"HTTP {status} {reason}")
        self.status, self.reason, self.message = status, reason, message


def label_value(value):
    """A value made valid as a GCP label value (``gemma3:270m`` -> ``gemma3-270m``)."""
    return _LABEL_BAD.sub("-", str(value).lower())[:63]


MANAGED_BY = label_value(fleet.MANAGED_BY)


def our_labels(deployment, model=None, environment=None, extra=None):
    """Our labels (cloud.our_tags) made valid for GCP; the user's extra keys must be valid already."""
    bad = sorted(k for k in extra or {} if not _LABEL_KEY_RE.match(str(k)))
    if bad:
        raise cloud.CloudError(
            f"label keys {', '.join(map(repr, bad))} are not valid GCP label keys: "
            "use up to 63 lowercase letters, digits, '_' or '-', starting with a letter"
        )
    tags = cloud.our_tags(deployment, model, environment, extra=extra)
    return {k: label_value(v) for k, v in tags.items()}


def marker(deployment):
    """What marks a resource without labels (networks, subnetworks, routers, firewalls) as ours.

    These resources have no labels in compute v1: their description carries our two labels.
    """
    return f"{fleet.LABEL_DEPLOYMENT}={deployment} {fleet.LABEL_MANAGED_BY}={fleet.MANAGED_BY}"


def is_marked(resource, deployment):
    """True when ``resource`` (a dict from the API) carries the marker of ``deployment``."""
    words = str((resource or {}).get("description") or "").replace(";", " ").replace(",", " ").split()
    return f"{fleet.LABEL_DEPLOYMENT}={deployment}" in words and f"{fleet.LABEL_MANAGED_BY}={fleet.MANAGED_BY}" in words


def valid_name(name):
    return bool(_NAME_RE.match(name or ""))


def last(url):
    """The last path segment of a self link or partial URL (zones/us-central1-a -> us-central1-a)."""
    return str(url or "").rstrip("/").rsplit("/", 1)[-1] or None


def region_of_zone(zone):
    return zone.rsplit("-", 1)[0] if zone else None


def shorten(text, limit=300):
    """Google's message, shortened and with anything that looks like a secret masked."""
    text = " ".join(str(text or "").split())
    for pattern, _what in cloud.SECRET_PATTERNS:
        text = pattern.sub("<redacted>", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_transient(exc):
    if isinstance(exc, HttpError):
        return exc.status == 429 or exc.status >= 500 or (exc.status == 403 and exc.reason in RATE_LIMIT_REASONS)
    return HAS_GOOGLE_AUTH and isinstance(exc, (requests.ConnectionError, requests.Timeout))


def sentence(exc, action):
    """One sentence for a failed call; never the request body, a header or a token."""
    if isinstance(exc, HttpError):
        hint = SENTENCES.get(exc.reason) or (
            "the credentials were refused: " + CREDENTIALS_HINT if exc.status == 401 else None
        )
        text = f"{action} failed: {hint}" if hint else f"{action} failed (HTTP {exc.status})"
        return f"{text} (GCP said {exc.reason}: {shorten(exc.message)})" if exc.message else text
    if HAS_GOOGLE_AUTH and isinstance(exc, google.auth.exceptions.RefreshError):
        # The first argument is Google's short reason (invalid_grant: ...); the rest is the response.
        reason = shorten(exc.args[0] if exc.args else "", 160)
        return f"{action} failed: the credentials could not get an access token ({reason}): {CREDENTIALS_HINT}"
    if HAS_GOOGLE_AUTH and isinstance(exc, google.auth.exceptions.TransportError):
        # The token endpoint (or the metadata server) out of reach: the call itself was never sent.
        return (
            f"{action} failed: could not reach Google's token endpoint or the metadata server for an access "
            f"token ({shorten(exc, 160)}); check the network, proxy and DNS of this machine"
        )
    if HAS_GOOGLE_AUTH and isinstance(exc, requests.Timeout):
        return f"{action} failed: Compute Engine did not answer within {TIMEOUT[1]} s; check endpoint and the network"
    if HAS_GOOGLE_AUTH and isinstance(exc, requests.ConnectionError):
        return f"{action} failed: could not reach the Compute Engine endpoint; check endpoint and the network"
    return f"{action} failed: {shorten(exc)}"


def _http_error(response):
    # Google answers {"error": {"errors": [{"reason", "message"}], "status", "message"}}; a proxy or
    # a wrong endpoint may answer anything else, which leaves only the status.
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    error = error if isinstance(error, dict) else {}
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    reason = first.get("reason") or error.get("status") or response.reason or "error"
    return HttpError(response.status_code, str(reason), str(error.get("message") or first.get("message") or ""))


class Api:
    """Compute Engine v1 over REST: retried calls, pages, operations polled to a deadline."""

    def __init__(self, session, project, endpoint=None, clock=None):
        self.session = session
        self.project = project
        self.base = (endpoint or DEFAULT_ENDPOINT).rstrip("/") + "/"
        self.clock = clock or cloud.Clock()
        self.retries = []  # (method path, reason, delay) for the result and the tests

    def path(self, url):
        """A path relative to the endpoint, from a relative path, a partial URL or a self link."""
        url = str(url)
        for prefix in (self.base, DEFAULT_ENDPOINT, "https://www.googleapis.com/compute/v1/"):
            if url.startswith(prefix):
                return url[len(prefix) :]
        return url.lstrip("/")

    def call(self, method, path, body=None, params=None, action=None):
        path = self.path(path)
        action = action or f"{method} {path}"

        def once():
            response = self.session.request(
                method,
                self.base + path,
                params=params,
                data=json.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json"} if body is not None else None,
                timeout=TIMEOUT,
            )
            if response.status_code >= 400:
                raise _http_error(response)
            try:
                answer = response.json() if response.content else {}
            except ValueError:
                answer = None
            if not isinstance(answer, dict):  # a proxy's page, a wrong endpoint: not transient
                kind = (getattr(response, "headers", None) or {}).get("Content-Type") or "no type"
                raise cloud.CloudError(
                    f"{action} failed: the answer was not Compute Engine's JSON (HTTP {response.status_code}, "
                    f"{kind}): check endpoint (OCE_GCE_ENDPOINT) and any proxy between this machine and Google"
                )
            return answer

        def on_retry(exc, attempt, delay):
            reason = exc.reason if isinstance(exc, HttpError) else type(exc).__name__
            self.retries.append([f"{method} {path}", reason, round(delay, 3)])

        try:
            return cloud.retry(
                once, is_transient, RETRY_ATTEMPTS, RETRY_BASE, RETRY_CAP, self.clock, on_retry, RETRY_FLOOR
            )
        except HttpError as exc:
            raise cloud.CloudError(sentence(exc, action), code=exc.reason, status=exc.status) from None
        except Exception as exc:
            if HAS_GOOGLE_AUTH and isinstance(exc, (requests.RequestException, google.auth.exceptions.GoogleAuthError)):
                raise cloud.CloudError(sentence(exc, action), code=type(exc).__name__) from None
            raise

    def change(self, method, path, body=None, action=None, request_id=None):
        """A call that changes something (insert, start, stop, delete, set...): returns its operation.

        It carries one ``requestId`` for the logical operation, reused by every retry of it, so a
        retry after a lost answer (a read timeout, a 503) gets the first operation back instead of
        doing the change twice or failing on what the first try did (a delete answering 404). Give
        ``request_id`` (a UUID) to make the operation idempotent across runs; see request_id().
        """
        params = {"requestId": request_id or str(uuid.uuid4())}
        return self.call(method, path, body=body, params=params, action=action)

    def get(self, path, action=None, missing_ok=False):
        try:
            return self.call("GET", path, action=action)
        except cloud.CloudError as exc:
            if missing_ok and exc.details.get("status") == 404:
                return None
            raise

    def list(self, path, params=None, action=None):
        items, token = [], None
        while True:
            page = self.call(
                "GET", path, params=dict(params or {}, **({"pageToken": token} if token else {})), action=action
            )
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return items

    def aggregated(self, resource, params=None, action=None):
        """Items of an aggregatedList over every zone or region, one flat list."""
        items, token = [], None
        path = f"projects/{self.project}/aggregated/{resource}"
        while True:
            query = dict(params or {}, **({"pageToken": token} if token else {}))
            page = self.call("GET", path, params=query, action=action)
            for scoped in (page.get("items") or {}).values():
                items.extend(scoped.get(resource) or [])
            token = page.get("nextPageToken")
            if not token:
                return items

    def wait(self, operation, timeout, action):
        """Poll an operation until DONE (to ``timeout``); raise its error as a sentence."""
        link = operation.get("selfLink") or operation.get("name")
        if not link:
            raise cloud.CloudError(f"{action} failed: Compute Engine answered without an operation to follow")
        done = cloud.wait_for(
            lambda: self.call("GET", link, action=f"{action} (polling its operation)"),
            lambda op: op.get("status") == "DONE",
            f"{action} to finish",
            timeout,
            interval=POLL_INTERVAL,
            clock=self.clock,
        )
        errors = (done.get("error") or {}).get("errors") or []
        if errors:
            first = errors[0]
            code = first.get("code") or "OPERATION_FAILED"
            hint = SENTENCES.get(code)
            said = "; ".join(shorten(e.get("message") or e.get("code"), 200) for e in errors)
            text = f"{action} failed: {hint}" if hint else f"{action} failed"
            raise cloud.CloudError(
                f"{text} (GCP said {code}: {said})", code=code, operation=done.get("name"), said=said
            )
        return done


# A fixed namespace for the request ids derived from an idempotency key (cloud.idempotency_key).
REQUEST_ID_NAMESPACE = uuid.UUID("6b1d3f0e-8c1a-5d4e-9a7b-0ce0c1a0d5e1")


def request_id(key, *parts):
    """A requestId (a UUID, as Compute Engine wants it) derived from ``key`` and ``parts``: the same in every run."""
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, "|".join([key, *map(str, parts)])))


def credentials(params):
    """google-auth credentials from the module's auth options; CloudError when they cannot work."""
    kind = params.get("auth_kind") or "application"
    scopes = [CLOUD_PLATFORM]
    if kind == "anonymous":
        if not params.get("endpoint"):
            raise cloud.CloudError(
                "auth_kind=anonymous only works against an emulator: set endpoint (or OCE_GCE_ENDPOINT)"
            )
        creds = AnonymousCredentials()
    elif kind == "serviceaccount":
        path = params.get("service_account_file")
        if not path:
            raise cloud.CloudError("auth_kind=serviceaccount needs service_account_file (or GCP_SERVICE_ACCOUNT_FILE)")
        try:
            creds = service_account.Credentials.from_service_account_file(path, scopes=scopes)
        except FileNotFoundError:
            raise cloud.CloudError(f"service_account_file {path} does not exist") from None
        except (ValueError, KeyError, TypeError, OSError):
            raise cloud.CloudError(
                f"service_account_file {path} is not a service account key (JSON with type service_account, "
                "client_email and private_key): download a new key or use auth_kind=application"
            ) from None
    else:
        try:
            creds, _project = google.auth.default(scopes=scopes)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            # Google's own words name the file it tried (a mistyped GOOGLE_APPLICATION_CREDENTIALS).
            raise cloud.CloudError(
                f"no Application Default Credentials found ({shorten(exc, 200)}): {CREDENTIALS_HINT}"
            ) from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or "the gcloud ADC file"
            raise cloud.CloudError(
                f"the Application Default Credentials in {where} could not be read ({type(exc).__name__}): "
                f"point GOOGLE_APPLICATION_CREDENTIALS at a credentials JSON file, or {CREDENTIALS_HINT}"
            ) from None
    target = params.get("impersonate_service_account")
    if target:
        if kind == "anonymous":
            raise cloud.CloudError("impersonate_service_account needs real credentials, not auth_kind=anonymous")
        creds = impersonated_credentials.Credentials(
            source_credentials=creds, target_principal=target, target_scopes=scopes, lifetime=3600
        )
    return creds


def connect(params, clock=None):
    """An Api from the module's options; CloudError when project or credentials are missing."""
    if not params.get("project"):
        raise cloud.CloudError("no GCP project given: set project (or GCP_PROJECT / GOOGLE_CLOUD_PROJECT)")
    session = AuthorizedSession(credentials(params))
    return Api(session, params["project"], params.get("endpoint") or None, clock)


# The other Google APIs a module may call, by name: their public roots (the version is part of
# each call's path, v1/...). One ``endpoint`` points Compute Engine elsewhere; see api_endpoint.
API_ROOTS = {
    "compute": DEFAULT_ENDPOINT,
    "iam": "https://iam.googleapis.com/",
    "cloudresourcemanager": "https://cloudresourcemanager.googleapis.com/",
    "secretmanager": "https://secretmanager.googleapis.com/",
}

# What to do about errors of the newer Google APIs (IAM, Resource Manager, Secret Manager), which
# name a google.rpc status instead of a reason. Only used by the callers of these APIs.
STATUS_SENTENCES = {
    "PERMISSION_DENIED": "the credentials are not allowed to do this (GCP names the missing permission below)",
    "UNAUTHENTICATED": "GCP rejected the credentials: " + CREDENTIALS_HINT,
    "NOT_FOUND": "it does not exist",
    "ALREADY_EXISTS": "it already exists",
    "ABORTED": "someone else changed it at the same time: run again",
    "FAILED_PRECONDITION": "GCP refused it in the state it is in",
    "INVALID_ARGUMENT": "GCP refused a parameter",
    "RESOURCE_EXHAUSTED": "a quota or rate limit was hit and stayed hit: retry later",
    "SERVICE_DISABLED": "the API is not enabled in this project: enable it with gcloud services enable",
}


def api_endpoint(api, endpoint=None):
    """The base URL of Google API ``api`` (a key of API_ROOTS) for the module's ``endpoint`` option.

    Without ``endpoint``, or with one on googleapis.com (a regional or Private Service Connect
    Compute endpoint says nothing about the other APIs), the public root. Any other endpoint is
    an emulator that serves Compute at ROOT/compute/v1/: the other APIs are at ROOT/<api>/ (our
    test emulator serves them there). ``CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>`` wins for its API.
    """
    override = os.environ.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_" + api.upper())
    if api != "compute" and override:
        return override.rstrip("/") + "/"
    if api == "compute":
        return (endpoint or DEFAULT_ENDPOINT).rstrip("/") + "/"
    if not endpoint:
        return API_ROOTS[api]
    base = endpoint.rstrip("/") + "/"
    host = re.sub(r"^[a-z]+://", "", base).split("/", 1)[0].split(":", 1)[0]
    if host == "googleapis.com" or host.endswith(".googleapis.com"):
        return API_ROOTS[api]
    if base.endswith("/compute/v1/"):
        base = base[: -len("compute/v1/")]
    return base + api + "/"


def connect_apis(params, apis, clock=None):
    """{name: Api} for each API in ``apis`` (keys of API_ROOTS), sharing one authorized session.

    Like connect(): CloudError when the project or the credentials are missing.
    """
    if not params.get("project"):
        raise cloud.CloudError("no GCP project given: set project (or GCP_PROJECT / GOOGLE_CLOUD_PROJECT)")
    session = AuthorizedSession(credentials(params))
    clock = clock or cloud.Clock()
    return {
        name: Api(session, params["project"], api_endpoint(name, params.get("endpoint") or None), clock)
        for name in apis
    }


def status_sentence(exc):
    """A CloudError of IAM, Resource Manager or Secret Manager told with STATUS_SENTENCES.

    Api.call words errors for Compute Engine; these APIs name a status (PERMISSION_DENIED) that
    Compute's table does not know. Returns the message to show (the original when nothing fits).
    """
    code = exc.details.get("code")
    hint = STATUS_SENTENCES.get(code)
    if not hint or ": " + hint in exc.msg:
        return exc.msg
    return exc.msg.replace(f" failed (HTTP {exc.details.get('status')})", f" failed: {hint}", 1)


def label_filter(labels, name=None):
    parts = [f'(labels.{k} = "{v}")' for k, v in sorted(labels.items())]
    if name:
        parts.append(f'(name = "{name}")')
    return " ".join(parts)


def find_instances(api, deployment=None, name=None):
    """Our instances in every zone (of one deployment, optionally one name), oldest first."""
    labels = {fleet.LABEL_MANAGED_BY: MANAGED_BY}
    if deployment:
        labels[fleet.LABEL_DEPLOYMENT] = deployment
    found = api.aggregated("instances", {"filter": label_filter(labels, name)}, action="list instances")
    # The filter is the server's; check again so a lax server cannot make us touch others' VMs.
    found = [i for i in found if all((i.get("labels") or {}).get(k) == v for k, v in labels.items())]
    found = [i for i in found if name is None or i.get("name") == name]
    return sorted(found, key=lambda i: (i.get("creationTimestamp") or "", i.get("name")))


def instance_path(instance):
    return f"projects/{last_project(instance)}/zones/{last(instance['zone'])}/instances/{instance['name']}"


def last_project(instance):
    match = re.search(r"projects/([^/]+)/", instance.get("selfLink") or instance.get("zone") or "")
    return match.group(1) if match else None


def metadata_items(instance):
    return {i.get("key"): i.get("value") for i in (instance.get("metadata") or {}).get("items") or []}


def epoch(timestamp):
    """Epoch seconds of a GCP timestamp (RFC 3339, any offset), or None."""
    if not timestamp:
        return None
    try:
        return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def accelerators(instance):
    return [
        {"type": last(a.get("acceleratorType")), "count": a.get("acceleratorCount", 1)}
        for a in instance.get("guestAccelerators") or []
    ]


def instance_node(instance, hourly_cost=None):
    labels = dict(instance.get("labels") or {})
    meta = metadata_items(instance)
    nic = (instance.get("networkInterfaces") or [{}])[0]
    zone = last(instance.get("zone"))
    public = [c.get("natIP") for c in nic.get("accessConfigs") or [] if c.get("natIP")]
    accs = accelerators(instance)
    extra = {
        "hourly_cost": hourly_cost,
        # Several projects in one inventory: group or compose by it, and tell same-named VMs apart.
        "project": last_project(instance),
        "availability_zone": zone,
        "subnet_id": last(nic.get("subnetwork")),
        "accelerator": accs[0]["type"] if accs else None,
        "accelerator_count": accs[0]["count"] if accs else 0,
        "public_ip": public[0] if public else None,
    }
    # Label values are sanitised (gemma3-270m); the metadata keeps the model's real name.
    if meta.get(fleet.LABEL_MODEL):
        extra["model"] = meta[fleet.LABEL_MODEL]
    return fleet.node_record(
        "gcp",
        instance["name"],
        STATES.get(instance.get("status"), "unknown"),
        labels=labels,
        instance_type=last(instance.get("machineType")),
        private_ip=nic.get("networkIP"),
        region=region_of_zone(zone),
        started_at=epoch(instance.get("lastStartTimestamp") or instance.get("creationTimestamp")),
        node_id=str(instance.get("id") or instance["name"]),
        extra=extra,
    )


def priced_node(instance):
    """The node record with ``hourly_cost`` of its machine and GPUs from the dated price table."""
    accs = accelerators(instance) or [{"type": None, "count": 0}]
    cost = catalog.gcp_hourly_cost(last(instance.get("machineType")), accs[0]["type"], accs[0]["count"])
    return instance_node(instance, cost)
