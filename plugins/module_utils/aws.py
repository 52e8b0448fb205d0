# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS layer of our modules: auth options, a client factory, retried calls, errors as sentences.

botocore's own retries are switched off so that one policy (cloud.retry, jittered backoff on
throttling and 5xx) applies everywhere and tests can see it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

from ansible.module_utils.basic import env_fallback

from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog, cloud, fleet

try:
    import boto3
    import botocore.config
    import botocore.exceptions as bexc
    import botocore.regions
    import botocore.session

    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    HAS_BOTO3 = False

AWS_ARGS = {
    "region": {
        "type": "str",
        "aliases": ["aws_region"],
        "fallback": (env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"]),
    },
    "endpoint_url": {"type": "str", "fallback": (env_fallback, ["AWS_ENDPOINT_URL"])},
    "profile": {"type": "str", "fallback": (env_fallback, ["AWS_PROFILE"])},
    "access_key": {"type": "str", "no_log": False, "fallback": (env_fallback, [fleet.AWS_KEY_ENV["access_key"]])},
    "secret_key": {"type": "str", "no_log": True, "fallback": (env_fallback, [fleet.AWS_KEY_ENV["secret_key"]])},
    "session_token": {"type": "str", "no_log": True, "fallback": (env_fallback, [fleet.AWS_KEY_ENV["session_token"]])},
}

THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "EC2ThrottledException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
}

# "Not here": no capacity, or the type is not supported in this zone. Capacity answers come as
# HTTP 500 but waiting does not help; the caller moves to the next placement (cloud.try_placements).
CAPACITY_CODES = {"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity", "Unsupported"}

CREDENTIALS_HINT = (
    "set access_key and secret_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
    "name a profile (profile or AWS_PROFILE), or run where an instance role or SSO session provides them"
)

# Error codes a person can act on, told as what to do.
SENTENCES = {
    "AuthFailure": "AWS rejected the credentials: check access_key/secret_key or the profile",
    "InvalidClientTokenId": "AWS does not know this access key: check access_key or the profile",
    "SignatureDoesNotMatch": "the secret key does not match the access key: check secret_key",
    "ExpiredToken": "the session token has expired: refresh the credentials (aws sso login, new STS token)",
    "RequestExpired": "the request expired: check this machine's clock",
    "UnauthorizedOperation": "the credentials are not allowed to do this: grant the IAM permission",
    "AccessDenied": "the credentials are not allowed to do this: grant the IAM permission",
    "VcpuLimitExceeded": "the account's vCPU quota for this instance family is used up: request a quota increase",
    "InstanceLimitExceeded": "the account's instance quota is used up: request a quota increase",
    "InvalidSubnetID.NotFound": "a subnet in subnet_ids does not exist in this region",
    "InvalidGroup.NotFound": "a security group in security_group_ids does not exist in this region",
    "InvalidInstanceID.NotFound": "EC2 does not know the instance (any more, or not yet)",
    "InvalidAMIID.NotFound": "the image does not exist in this region",
    "InvalidAMIID.Malformed": "the image id is malformed (expected ami-...)",
    "InvalidParameterValue": "AWS refused a parameter",
    "ParameterNotFound": "the SSM parameter does not exist in this region",
}


class Api:
    """A boto3 client whose calls retry transient errors and raise CloudError sentences."""

    def __init__(self, client, region=None, clock=None, attempts=6, base=1.0, cap=20.0):
        self.client = client
        self.region = region
        self.clock = clock or cloud.Clock()
        self.attempts, self.base, self.cap = attempts, base, cap
        self.retries = []  # (operation, error code, delay) for the result and the tests

    def call(self, operation, **params):
        def on_retry(exc, attempt, delay):
            self.retries.append((operation, error_code(exc), round(delay, 3)))

        try:
            return cloud.retry(
                lambda: getattr(self.client, operation)(**params),
                is_transient,
                self.attempts,
                self.base,
                self.cap,
                self.clock,
                on_retry,
            )
        except EOFError:
            # botocore asks for a role profile's MFA code on stdin while it signs the call.
            raise cloud.CloudError(
                f"{operation.replace('_', ' ')} failed: the AWS profile asks for an MFA code, which Ansible "
                "cannot prompt for: start a session first (aws sts get-session-token, aws-vault exec, "
                "aws sso login) and run with its credentials"
            ) from None
        except Exception as exc:
            if HAS_BOTO3 and isinstance(exc, (bexc.BotoCoreError, bexc.ClientError)):
                raise cloud.CloudError(sentence(exc, operation), code=error_code(exc)) from exc
            raise

    def paginate(self, operation, key, **params):
        items, token = [], None
        while True:
            page = self.call(operation, **dict(params, **({"NextToken": token} if token else {})))
            items.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                return items


def error_code(exc):
    if HAS_BOTO3 and isinstance(exc, bexc.ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return type(exc).__name__


def is_transient(exc):
    if not HAS_BOTO3:
        return False
    if isinstance(exc, bexc.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = error_code(exc)
        return code not in CAPACITY_CODES and (code in THROTTLING or status >= 500)
    return isinstance(
        exc,
        (bexc.EndpointConnectionError, bexc.ConnectTimeoutError, bexc.ConnectionClosedError, bexc.ReadTimeoutError),
    )


def sentence(exc, operation):
    """One sentence for a botocore error; the request itself is never echoed."""
    action = operation.replace("_", " ")
    if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError)):
        return f"no usable AWS credentials for {action}: {CREDENTIALS_HINT}"
    if isinstance(exc, bexc.NoRegionError):
        return "no AWS region given: set region (or AWS_REGION)"
    # Refused, timed out, TLS or proxy: every way of not reaching the endpoint.
    if isinstance(exc, bexc.ConnectionError):
        return f"could not reach the AWS endpoint for {action} ({exc}): check region, endpoint_url and the network"
    if isinstance(exc, bexc.ClientError):
        code = error_code(exc)
        aws_says = exc.response.get("Error", {}).get("Message", "")
        hint = SENTENCES.get(code) or SENTENCES.get(code.split(".")[0])
        text = f"{action} failed: {hint}" if hint else f"{action} failed"
        return f"{text} (AWS said {code}: {aws_says})" if aws_says else f"{text} ({code})"
    return f"{action} failed: {exc}"


# What a session loads from botocore's data files (service models, endpoints, partitions) is the
# same for every session of the process: one data loader for all, so that EC2's model (about a
# second of CPU on a busy controller) is read once per process, not once per session.
# Sessions and the clients made from them are not thread-safe: both are made under the lock.
_LOCK = threading.Lock()
_LOADER = []
_REGIONS = []


def _core_session():
    core = botocore.session.get_session()
    if _LOADER:
        core.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(core.get_component("data_loader"))
    return core


def known_regions():
    """The regions this botocore knows (fixed for the life of the process: read once, by one thread)."""
    with _LOCK:
        if not _REGIONS:
            # From the endpoints file, which every client reads anyway (a session's
            # get_available_regions would read EC2's model once more, under another cache key).
            resolver = botocore.regions.EndpointResolver(
                _core_session().get_component("data_loader").load_data("endpoints")
            )
            regions = set()
            for partition in resolver.get_available_partitions():
                regions.update(resolver.get_available_endpoints("ec2", partition))
            _REGIONS.append(frozenset(regions))
        return _REGIONS[0]


# One boto3 session per set of credentials, whatever the region (the client names it), reused by
# every connect of the process: the fleet inventory connects once per region, and its regions'
# DescribeInstances calls leave together, as three clients of one session would.
_SESSIONS = {}


# Where boto3 looks for credentials besides the options: part of a session's key, so a changed
# environment (a test, a credential_process refresh by the caller) gets a new session.
CREDENTIAL_ENV = (
    *fleet.AWS_KEY_ENV.values(),
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def session_for(params):
    """The process's boto3 session for the credentials of ``params`` and of the environment."""
    key = tuple(params.get(k) for k in ("access_key", "secret_key", "session_token", "profile"))
    key += tuple(os.environ.get(k) for k in CREDENTIAL_ENV)
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = boto3.session.Session(
                aws_access_key_id=params.get("access_key"),
                aws_secret_access_key=params.get("secret_key"),
                aws_session_token=params.get("session_token"),
                profile_name=params.get("profile") or None,
                botocore_session=_core_session(),
            )
        return _SESSIONS[key]


def with_profile_first(params):
    """``params`` for a profile asked for (fleet.aws_profile_first); CloudError for keys beside it."""
    params, error = fleet.aws_profile_first(params)
    if error:
        raise cloud.CloudError(error)
    return params


def connect(params, service, clock=None):
    """An Api for ``service`` from the module's auth options; CloudError when they cannot work."""
    params = with_profile_first(params)
    region = params.get("region")
    if not region:
        raise cloud.CloudError("no AWS region given: set region (or AWS_REGION)")
    regions = known_regions()
    if region not in regions:
        raise cloud.CloudError(
            f"region {region!r} is not an AWS region this botocore knows "
            f"(for example {', '.join(sorted(r for r in regions if r.startswith('us-')))}); check the spelling"
        )
    config = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60
    )
    endpoint = params.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint and not re.match(r"^https?://[^/\s]", endpoint):
        raise cloud.CloudError(
            f"endpoint_url {endpoint!r} is not a URL: give its scheme, such as http://localhost:4566"
        )
    if bool(params.get("access_key")) != bool(params.get("secret_key")):
        raise cloud.CloudError(
            "access_key and secret_key (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) go together: "
            "set both, or neither to use a profile or an instance role"
        )
    # Whatever the config files or a credential helper do wrong fails here, before any call, as a
    # sentence. A missing profile fails here with credentials from the profile, or at the client's
    # config when the keys come from elsewhere (the environment).
    try:
        session = session_for(params)
        credentials = session.get_credentials()
        if credentials is None:
            raise cloud.CloudError(f"no AWS credentials found: {CREDENTIALS_HINT}")
        with _LOCK:
            client = session.client(service, region_name=region, endpoint_url=endpoint, config=config)
    except bexc.ProfileNotFound as exc:
        raise cloud.CloudError(
            f"AWS profile {exc.kwargs.get('profile')!r} does not exist: {CREDENTIALS_HINT}"
        ) from None
    except (bexc.BotoCoreError, OSError, ValueError) as exc:
        # A credential_process that fails or is not installed, a config file that does not parse,
        # a role profile without its source profile.
        raise cloud.CloudError(
            f"the AWS credentials could not be loaded ({type(exc).__name__}: {exc}): check the profile's "
            f"entries in the AWS config files, or {CREDENTIALS_HINT}"
        ) from None
    return Api(client, region, clock)


def zone_in_region(zone, region):
    """Whether ``zone`` is an availability zone of ``region`` (us-east-1a), or a Local Zone of it (us-east-1-bos-1a)."""
    return bool(region) and re.match(rf"^{re.escape(region)}(-[a-z]+-[0-9]+)?[a-z]$", zone or "") is not None


# Tag keys AWS itself sets (aws:cloudformation:stack-name, ...); they cannot be changed or removed.
RESERVED_TAG_PREFIXES = ("aws:",)


def to_tag_list(tags):
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_dict(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def tag_filters(tags):
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


# EC2 instance states onto the fleet's node states.
STATES = {
    "pending": "pending",
    "running": "running",
    "stopping": "stopping",
    "stopped": "stopped",
    "shutting-down": "stopping",
    "terminated": "absent",
}
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def find_instances(api, deployment=None, name=None):
    """Our live instances (of one deployment, optionally one name), oldest first."""
    labels = {fleet.LABEL_MANAGED_BY: fleet.MANAGED_BY}
    if deployment:
        labels[fleet.LABEL_DEPLOYMENT] = deployment
    if name:
        labels["Name"] = name
    filters = tag_filters(labels) + [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    reservations = api.paginate("describe_instances", "Reservations", Filters=filters)
    instances = [i for r in reservations for i in r.get("Instances", [])]
    return sorted(instances, key=lambda i: (str(i.get("LaunchTime")), i["InstanceId"]))


# EC2 is eventually consistent: for a while after RunInstances, DescribeInstances may answer
# InvalidInstanceID.NotFound (or no reservation) for the instance it just launched. Within this
# many seconds of a launch, "not found" is asked again instead of believed.
NOT_FOUND_GRACE = 120.0


def is_not_found(exc):
    return str(getattr(exc, "details", {}).get("code") or "").endswith(".NotFound")


def describe_instance(api, instance_id, fresh_until=None):
    """One instance by id. Until ``fresh_until`` (a ``api.clock.now()`` value: the launch plus
    NOT_FOUND_GRACE) a not-found answer, or an empty one, is EC2 catching up: asked again."""

    def once():
        reservations = api.call("describe_instances", InstanceIds=[instance_id]).get("Reservations") or []
        found = [i for r in reservations for i in r.get("Instances") or []]
        if not found:
            raise cloud.CloudError(
                f"describe instances failed: EC2 does not list instance {instance_id}",
                code="InvalidInstanceID.NotFound",
            )
        return found[0]

    if fresh_until is None:
        return once()

    def on_retry(exc, attempt, delay):
        api.retries.append(("describe_instances", exc.details.get("code"), round(delay, 3)))

    return cloud.retry_until(once, is_not_found, fresh_until, api.base, api.cap, api.clock, on_retry)


# Instances on their way out, or gone but still listed (about an hour): the node's earlier generations.
GONE_STATES = ["shutting-down", "terminated"]


def gone_instance_ids(api, deployment, name):
    """Ids of our instances of ``deployment`` named ``name`` that EC2 still lists as shutting down or terminated."""
    labels = {fleet.LABEL_MANAGED_BY: fleet.MANAGED_BY, fleet.LABEL_DEPLOYMENT: deployment, "Name": name}
    filters = tag_filters(labels) + [{"Name": "instance-state-name", "Values": GONE_STATES}]
    reservations = api.paginate("describe_instances", "Reservations", Filters=filters)
    return sorted(i["InstanceId"] for r in reservations for i in r.get("Instances", []))


def client_token(key, *parts):
    """RunInstances' ClientToken (at most 64 ASCII characters) for idempotency ``key`` and ``parts``."""
    return hashlib.sha256("|".join([key, *map(str, parts)]).encode()).hexdigest()


def instance_node(instance, region, hourly_cost=None):
    tags = tag_dict(instance.get("Tags"))
    launched = instance.get("LaunchTime")
    return fleet.node_record(
        "aws",
        tags.get("Name") or instance["InstanceId"],
        STATES.get(instance["State"]["Name"], "unknown"),
        labels=tags,
        instance_type=instance.get("InstanceType"),
        private_ip=instance.get("PrivateIpAddress"),
        region=region,
        started_at=launched.timestamp() if hasattr(launched, "timestamp") else None,
        node_id=instance["InstanceId"],
        extra={
            "hourly_cost": hourly_cost,
            "availability_zone": instance.get("Placement", {}).get("AvailabilityZone"),
            "subnet_id": instance.get("SubnetId"),
            "image_id": instance.get("ImageId"),
            "public_ip": instance.get("PublicIpAddress"),
        },
    )


def priced_node(instance, region):
    """The node record with ``hourly_cost`` of its instance type from the dated price table."""
    return instance_node(instance, region, catalog.aws_hourly_cost(instance.get("InstanceType")))


def alarm_marker(deployment):
    """The end of the description of a CloudWatch alarm of ``deployment``: ``[oce-deployment=D oce-managed-by=...]``.

    Alarms made before they were tagged carry only this; it stays the mark destroy goes by (the
    ``deployment_labels`` filter's ``form=marker`` writes the same string for the node role).
    """
    return "[" + " ".join(f"{key}={value}" for key, value in fleet.deployment_labels(deployment).items()) + "]"


def tag_problems(tags, limit, where):
    """What is wrong with the whole tag set ``tags`` (ours and the user's) of a resource, as sentences:
    keys of AWS's own prefix, more than ``limit`` tags (``where``: the services, for the sentence)."""
    problems = []
    reserved = sorted(k for k in tags if k.startswith(RESERVED_TAG_PREFIXES))
    if reserved:
        problems.append(f"tags may not set {', '.join(reserved)}: the aws: prefix is AWS's own")
    if len(tags) > limit:
        problems.append(f"{len(tags)} tags with ours: {where} allow at most {limit} per resource")
    return problems


def failed_part_way(exc, done, hints):
    """cloud.failed_part_way, with the hint of ``hints`` for the error's code."""
    hint = hints.get(exc.details.get("code") or "")
    return cloud.failed_part_way(exc, done, msg=f"{exc.msg}; {hint}" if hint else None)
