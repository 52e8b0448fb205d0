# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: model_catalog
short_description: The model catalog (sizes, GPU memory, disks, machines, prices), with your overrides
version_added: 0.1.0
description:
  - Returns catalog entries for the given models, each with C(name), C(size_gb), C(min_vram_gb),
    C(disk_gb), C(aws) (instance types in order), C(gcp) (machine + accelerator options in order),
    C(aws_types) (the instance type table rows of C(aws)) and C(estimate).
  - C(estimate) is the hourly and monthly cost of the node C(create) would make on I(cloud) (machine
    and GPUs, root disk, NAT) from the collection's dated price table, the same keys for every cloud,
    with C(lines) to print (the sum with its parts, then the price date and that it is an estimate).
  - With I(prices) (cloud C(aws) only), the live prices of M(ollama_cloud.engine.aws_price_info)
    replace the table figures they cover, and C(estimate.lines) say
    C(live AWS Pricing API prices of <date> for <region>) and which parts, if any, still come from the table.
  - Without terms, returns the whole merged catalog C({models, instance_types, prices}).
  - A malformed override or an unknown model fails with a sentence that says what is wrong.
options:
  _terms:
    description: Model names, for example C(codellama:34b-code).
    type: list
    elements: str
  overrides:
    description:
      - Entries merged over the built-in catalog, C({models, instance_types}). Fields of a known
        model are replaced one by one; a new model needs C(size_gb), C(min_vram_gb), C(disk_gb) and C(aws).
    type: dict
    default: {}
  cloud:
    description:
      - The cloud of C(estimate), C(aws) or C(gcp); any other fails with a sentence (no price table).
    type: str
    default: aws
  machine:
    description:
      - The first choice of machine, an AWS instance type or a GCP machine type (one of the model's
        C(gcp) options); without it, the catalog's first choice for I(cloud).
      - Each model must fit its GPU memory, else the lookup fails with the numbers.
    type: str
  instance_type:
    description: The same as I(machine), kept for the AWS callers; I(machine) wins when both are given.
    type: str
  nat:
    description: Whether the deployment's network has NAT egress (C(false) for C(egress=none)).
    type: bool
    default: true
  node:
    description: The node's name, for C(estimate.lines).
    type: str
  prices:
    description:
      - Live AWS prices, the C(prices) that M(ollama_cloud.engine.aws_price_info) returns
        (C(instance_hourly), C(gp3_gb_month), C(nat_gateway_hour), C(region), C(source), C(date)).
        The figures they cover replace the dated table's in C(estimate); the rest stay the table's.
      - Only for I(cloud=aws); empty (the default) means the collection's dated price table.
    type: dict
    default: {}
"""

EXAMPLES = r"""
# With the catalog overrides the node role creates AWS nodes with (node_aws_catalog).
- name: What codellama:34b-code needs and costs
  ansible.builtin.debug:
    msg: "{{ lookup('ollama_cloud.engine.model_catalog', 'codellama:34b-code', overrides=overrides) }}"
  vars:
    overrides: "{{ node_aws_catalog | default({}) }}"

- name: Add a model of our own through inventory vars
  ansible.builtin.set_fact:
    entry: "{{ lookup('ollama_cloud.engine.model_catalog', 'ourco/coder:14b', overrides=overrides) }}"
  vars:
    overrides:
      models:
        ourco/coder:14b: {size_gb: 9, min_vram_gb: 12, disk_gb: 120, aws: [g5.xlarge, g6.xlarge]}

- name: The cost preview of a GCP node on its second catalog option, without NAT
  ansible.builtin.debug:
    msg: "{{ entry.estimate.lines }}"
  vars:
    entry: >-
      {{ lookup('ollama_cloud.engine.model_catalog', 'codellama:7b-code',
                cloud='gcp', machine='g2-standard-8', nat=false, node='oce-demo') }}

- name: Today's prices from the AWS Pricing API, only when asked
  ollama_cloud.engine.aws_price_info:
    instance_types: [g5.xlarge]
    region: eu-west-1
  register: live

- name: The cost preview from those live prices
  ansible.builtin.debug:
    msg: "{{ entry.estimate.lines }}"
  vars:
    entry: >-
      {{ lookup('ollama_cloud.engine.model_catalog', 'codellama:7b-code',
                machine='g5.xlarge', prices=live.prices) }}
"""

RETURN = r"""
_raw:
  description: One catalog entry per model (or the whole catalog without terms).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog


def entry(cat, model, instance_type=None, cloud="aws", nat=True, node=None, prices=None):
    found = dict(catalog.model_entry(cat, model), name=model)
    found["aws_types"] = {t: cat["instance_types"].get(t) for t in found["aws"]}
    found["estimate"] = catalog.estimate(cat, model, cloud, instance_type, nat=nat, node=node, prices=prices)
    return found


def lookup(terms, overrides=None, instance_type=None, cloud="aws", nat=True, node=None, prices=None):
    try:
        cat = catalog.merge(overrides)
        if not terms:
            return [dict(cat, prices=catalog.PRICES)]
        return [entry(cat, term, instance_type, cloud, nat, node, prices) for term in terms]
    except catalog.CatalogError as exc:
        raise AnsibleLookupError(str(exc)) from None


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return lookup(
            terms,
            self.get_option("overrides"),
            self.get_option("machine") or self.get_option("instance_type"),
            self.get_option("cloud"),
            self.get_option("nat"),
            self.get_option("node"),
            self.get_option("prices"),
        )
