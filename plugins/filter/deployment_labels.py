# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_labels
short_description: The tags or labels that mark a deployment's resources as ours
version_added: 0.2.0
description:
  - The ownership labels of a deployment, C(oce-deployment) and C(oce-managed-by), as the
    collection's modules write them (the same keys on podman, AWS tags and GCP labels), so that
    YAML never restates them.
  - With I(environment) or I(model), C(oce-environment) and C(oce-model) are added.
  - I(form=tags) gives the labels as a dict; I(form=filters) the same as filters of the AWS C(*_info)
    modules (C(tag:KEY)); I(form=marker) one string, C([oce-deployment=NAME oce-managed-by=...]), for
    resources that take no tags (a CloudWatch alarm's description ends with it).
  - The name is not checked here; the node role and the modules check it before they use it.
positional: _input
options:
  _input:
    description: The deployment's name.
    type: str
    required: true
  environment:
    description: The environment label (dev, staging, prod), added as C(oce-environment) when given.
    type: str
  model:
    description: The model, added as C(oce-model) when given.
    type: str
  form:
    description: How to return the labels.
    type: str
    choices: [tags, filters, marker]
    default: tags
"""

EXAMPLES = r"""
- name: Tag a resource as the deployment's
  amazon.aws.ec2_vpc_net:
    name: oce-demo
    cidr_block: 10.42.0.0/16
    tags: "{{ my_tags | combine('demo' | ollama_cloud.engine.deployment_labels(environment='dev')) }}"

- name: Find what the deployment made
  amazon.aws.ec2_vpc_net_info:
    filters: "{{ 'demo' | ollama_cloud.engine.deployment_labels(form='filters') }}"
"""

RETURN = r"""
_value:
  description:
    - "With I(form=tags), the labels, for example C({oce-deployment: demo, oce-managed-by: ollama_cloud.engine})."
    - "With I(form=filters), the same keys prefixed with C(tag:)."
    - With I(form=marker), the string C([oce-deployment=demo oce-managed-by=ollama_cloud.engine]).
  type: raw
"""

from ansible.errors import AnsibleFilterError

FORMS = ("tags", "filters", "marker")


def deployment_labels(deployment, environment=None, model=None, form="tags"):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet

    if form not in FORMS:
        raise AnsibleFilterError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
    labels = fleet.deployment_labels(deployment, model=model, environment=environment)
    if form == "filters":
        return {f"tag:{key}": value for key, value in labels.items()}
    if form == "marker":
        return "[" + " ".join(f"{key}={value}" for key, value in labels.items()) + "]"
    return labels


class FilterModule:
    def filters(self):
        return {"deployment_labels": deployment_labels}
