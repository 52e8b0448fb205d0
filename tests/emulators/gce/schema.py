# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation against the official discovery documents (compute.v1, iam.v1, cloudresourcemanager.v1,
secretmanager.v1).

The documents ship with google-api-python-client (googleapiclient/discovery_cache/documents/
compute.v1.json and the others). compute.v1 has its own service path (/compute/v1/); the others
have none (their paths start at v1/ on their own host), so on the emulator's single port each is
served under a prefix: /iam/v1/..., /cloudresourcemanager/v1/..., /secretmanager/v1/...

``Discovery.route`` finds the API method of an HTTP request (method + path); ``check`` compares
a JSON value with a schema recursively: unknown fields, wrong types, values outside an enum,
int64 numbers not sent as strings, bytes (fingerprints, etags) that are not base64, and in
requests fields the API marks output only or a method requires.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re

import googleapiclient

DOCUMENTS = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")
DOCUMENT = os.path.join(DOCUMENTS, "compute.v1.json")


def document(name):
    """The path of a discovery document shipped with google-api-python-client (``iam.v1.json``)."""
    return os.path.join(DOCUMENTS, name)


# Query parameters every Google API accepts (the document's top-level "parameters").
_INT_FORMATS = {"int32", "uint32"}
_STRING_INT_FORMATS = {"int64", "uint64"}


def _is_base64(value):
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _output_only(prop):
    return prop.get("readOnly") is True or str(prop.get("description", "")).startswith("[Output Only]")


class Method:
    def __init__(self, resource, name, spec, service_path, prefix=""):
        self.id = spec["id"]
        self.resource, self.name = resource, name
        self.http_method = spec["httpMethod"]
        self.path = spec.get("flatPath") or spec["path"]
        self.parameters = spec.get("parameters", {})
        self.request = (spec.get("request") or {}).get("$ref")
        self.response = (spec.get("response") or {}).get("$ref")
        regex, self.variables, self.literal = "", [], 0
        for part in re.split(r"(\{\+?[A-Za-z_]+\})", self.path):
            if part.startswith("{"):
                self.variables.append(part.strip("{}+"))
                regex += "(.+)" if part.startswith("{+") else "([^/]+)"
            else:
                regex += re.escape(part)
                self.literal += len(part)
        self.regex = re.compile("^/" + re.escape(prefix + service_path) + regex + "$")


class Discovery:
    """One discovery document; ``prefix`` is the path it is served under (``iam/``), if any."""

    def __init__(self, path=DOCUMENT, prefix=""):
        with open(path) as f:
            self.doc = json.load(f)
        self.prefix = prefix
        self.name = f"{self.doc['name']}.{self.doc['version']}"
        self.schemas = self.doc["schemas"]
        self.common = set(self.doc.get("parameters", {}))
        self.methods = []
        self._walk(self.doc.get("resources", {}))
        # Paths with fewer variables win (images/family/{family} over images/{image}); then the
        # most literal text (secrets/{s}:getIamPolicy over secrets/{s}, as Google's custom verbs).
        self.methods.sort(key=lambda m: (len(m.variables), -m.literal))

    def _walk(self, resources):
        for rname, resource in resources.items():
            for mname, spec in resource.get("methods", {}).items():
                self.methods.append(Method(rname, mname, spec, self.doc["servicePath"], self.prefix))
            self._walk(resource.get("resources", {}))

    def route(self, http_method, path):
        """(Method, path variables) for a request, or (None, None)."""
        for method in self.methods:
            if method.http_method != http_method:
                continue
            match = method.regex.match(path)
            if match:
                return method, dict(zip(method.variables, match.groups()))
        return None, None

    def check_query(self, method, query):
        problems = []
        for key in query:
            spec = method.parameters.get(key)
            if spec is None:
                if key not in self.common:
                    problems.append(f"query parameter {key!r} is not a parameter of {method.id}")
                continue
            if spec.get("location") != "query":
                problems.append(f"{key!r} is a {spec.get('location')} parameter of {method.id}, sent in the query")
            for value in query[key]:
                if spec.get("type") == "boolean" and value not in ("true", "false"):
                    problems.append(f"query parameter {key}={value!r} is not a boolean")
                if spec.get("type") == "integer" and not re.match(r"^-?[0-9]+$", value):
                    problems.append(f"query parameter {key}={value!r} is not an integer")
                if spec.get("enum") and value not in spec["enum"]:
                    problems.append(f"query parameter {key}={value!r} is not one of {spec['enum']}")
        return problems

    def check(self, schema_name, value, where="$", request_of=None):
        """Problems (sentences) of ``value`` against schema ``schema_name``; [] when it conforms.

        ``request_of`` is the method id when ``value`` is a request body: then output-only fields
        are errors and fields the method requires must be there.
        """
        problems = []
        self._check({"$ref": schema_name}, value, where, problems, request_of)
        return problems

    def _check(self, schema, value, where, problems, request_of):
        if "$ref" in schema:
            name = schema["$ref"]
            schema = dict(self.schemas[name], **{k: v for k, v in schema.items() if k != "$ref"})
        kind = schema.get("type")
        if kind == "any" or kind is None and "properties" not in schema:
            return
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                problems.append(f"{where}: expected an object, got {type(value).__name__}")
                return
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if key in props:
                    prop = props[key]
                    if request_of and _output_only(prop):
                        problems.append(f"{where}.{key}: output-only field sent in a request")
                    self._check(prop, item, f"{where}.{key}", problems, request_of)
                elif extra is not None:
                    self._check(extra, item, f"{where}[{key!r}]", problems, request_of)
                else:
                    problems.append(f"{where}.{key}: unknown field")
            if request_of:
                for key, prop in props.items():
                    required = (prop.get("annotations") or {}).get("required") or []
                    if request_of in required and key not in value:
                        problems.append(f"{where}.{key}: required by {request_of}, missing")
            return
        if kind == "array":
            if not isinstance(value, list):
                problems.append(f"{where}: expected an array, got {type(value).__name__}")
                return
            for i, item in enumerate(value):
                self._check(schema.get("items", {}), item, f"{where}[{i}]", problems, request_of)
            return
        fmt = schema.get("format")
        if kind == "string":
            if not isinstance(value, str):
                problems.append(f"{where}: expected a string{' (' + fmt + ')' if fmt else ''}, got {value!r}")
            elif fmt in _STRING_INT_FORMATS and not re.match(r"^-?[0-9]+$", value):
                problems.append(f"{where}: expected an {fmt} as a decimal string, got {value!r}")
            elif fmt == "byte" and not _is_base64(value):
                problems.append(f"{where}: expected base64 bytes (a fingerprint as the API sent it), got {value!r}")
            elif schema.get("enum") and value not in schema["enum"]:
                problems.append(f"{where}: {value!r} is not one of {', '.join(schema['enum'])}")
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{where}: expected an integer, got {value!r}")
            elif fmt == "uint32" and value < 0:
                problems.append(f"{where}: expected a uint32, got {value!r}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"{where}: expected a number, got {value!r}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                problems.append(f"{where}: expected a boolean, got {value!r}")
        else:
            problems.append(f"{where}: the schema has a type this checker does not know: {kind!r}")
