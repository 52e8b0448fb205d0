# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base of the node modules, as amazon.aws's AnsibleAWSModule is theirs.

It owns the options (the cloud's auth options, the shared node options, the module's own), the
SDK check, the clients (whose retries it reports), the one failure shape and the run of a
``cloud.Provider`` through ``cloud.converge``. A cloud is a module_utils module (aws, gcp,
podman) with ``connect(params, ...)`` and the facts SDK_FACTS names.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud
from ansible_collections.ollama_cloud.engine.plugins.module_utils.catalog import CatalogError

# Where a cloud's module_utils keeps its auth options and its SDK flag, and the SDK to install.
# A new cloud's module_utils may instead define ARGS, HAS_SDK and SDK (as podman does).
SDK_FACTS = {
    "aws": ("AWS_ARGS", "HAS_BOTO3", "boto3"),
    "gcp": ("GCP_ARGS", "HAS_GOOGLE_AUTH", "google-auth and requests"),
}


def sdk_facts(lib):
    """(auth options, whether the SDK imported, the SDK's name) of the cloud module_utils ``lib``."""
    args, has_sdk, sdk = SDK_FACTS.get(lib.__name__.rsplit(".", 1)[-1], ("ARGS", "HAS_SDK", None))
    return getattr(lib, args), getattr(lib, has_sdk), sdk or lib.SDK


class NodeModule:
    """AnsibleModule with a cloud's options, its SDK check, its clients and one failure shape.

    ``node``: True adds every cloud.NODE_ARGS option, a tuple adds those named.
    """

    def __init__(self, lib, argument_spec, node=False):
        args, has_sdk, sdk = sdk_facts(lib)
        spec = dict(args)
        names = cloud.NODE_ARGS if node is True else node or ()
        spec.update({key: cloud.NODE_ARGS[key] for key in names})
        spec.update(argument_spec)
        self.lib = lib
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.apis = []
        if not has_sdk:
            self.fail(missing_required_lib(sdk))

    def client(self, *args, **kwargs):
        """``lib.connect(params, *args)`` (or ``connect=``, ``params=``); its retries are reported."""
        connect = kwargs.pop("connect", None) or self.lib.connect
        made = connect(kwargs.pop("params", None) or self.params, *args, **kwargs)
        self.apis += list(made.values()) if isinstance(made, dict) else [made]
        return made

    @property
    def retries(self):
        """The calls retried by every client so far, as the clients record them."""
        return [r for api in self.apis for r in getattr(api, "retries", [])]

    def fail(self, error, **extra):
        """The one failure shape: ``msg``, ``changed`` (False unless the error says so), ``retries``,
        and every detail of a CloudError except ``last`` (the raw resource)."""
        details = {k: v for k, v in (getattr(error, "details", None) or {}).items() if k != "last"}
        result = dict({"changed": False, "retries": self.retries}, **details)
        result.update(extra)
        self.module.fail_json(msg=getattr(error, "msg", None) or str(error), **result)

    def run(self, work, retries=True):
        """Exit with ``work()``'s result (plus ``retries``); a CloudError or CatalogError fails in the one shape."""
        try:
            result = work()
        except (cloud.CloudError, CatalogError) as exc:
            self.fail(exc)
        if retries:
            result["retries"] = self.retries
        self.module.exit_json(**result)

    def apply_state(self, make, failed, record):
        """Run the planner ``make()`` builds to ``state`` (its method ``present`` or ``absent``, which
        returns ``before, after, *out``) and exit with the result: ``changed``, ``actions`` and the
        diff, plus what ``record(planner, after, *out)`` gives. The planner's ``warnings``, if any, are
        warned. A CloudError fails as ``failed(exc, planner)`` says (planner None when ``make`` failed)."""

        def work():
            planner = None
            try:
                planner = make()
                before, after, *out = getattr(planner, self.params["state"])()
            except cloud.CloudError as exc:
                raise failed(exc, planner) from None
            for warning in getattr(planner, "warnings", ()):
                self.module.warn(warning)
            result = {"changed": bool(planner.actions), "actions": planner.actions}
            result.update(record(planner, after, *out), diff={"before": before, "after": after})
            return result

        self.run(work)

    def check(self, problems):
        """Fail with every input problem at once, before any call."""
        problems = [p for p in problems if p]
        if problems:
            self.fail("; ".join(problems))

    def converge(self, provider, retries=True):
        """Bring the node to ``state`` through the Provider ``provider()`` makes (cloud.converge); exit.

        A factory, so that a client that cannot connect fails in the one shape too.
        """
        params = self.params
        self.run(
            lambda: cloud.converge(provider(), params["state"], self.check_mode, params["deployment"], params["name"]),
            retries,
        )


def records(client, find, node, deployment):
    """The node records of ``deployment`` (all of ours when empty), as an ``*_info`` module returns them:
    ``find(client, deployment)``'s raw answers made ``node(client, raw)``, sorted by name, then id."""
    nodes = [node(client, raw) for raw in find(client, deployment) if raw]
    return sorted(nodes, key=lambda n: (n["name"], n["id"]))


def info(lib, find, node, connect=None, **argument_spec):
    """The whole of an ``*_info`` module: the nodes ``find(client, deployment)`` returns as ``node(client, raw)``.

    ``connect(base)`` makes the client (default: ``base.client()``). Sorted by name, then id.
    """
    base = NodeModule(lib, dict(argument_spec, deployment={"type": "str"}))

    def work():
        client = connect(base) if connect else base.client()
        return {"changed": False, "nodes": records(client, find, node, base.params["deployment"])}

    base.run(work, retries=False)
