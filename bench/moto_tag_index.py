#!/usr/bin/env python
"""moto_server, with an EC2 resource's own tags read by its id instead of by a scan of every tag.

moto 5 answers ``resource.get_tags()`` with ``describe_tags(filters={"resource-id": [id]})``, which
matches a regular expression against every tag of every resource in the region. A tag filter and
each instance rendered call it once per instance, so one DescribeInstances page costs time in the
square of the fleet: over a minute per page at 10,000 instances on two cores, beyond botocore's
read timeout. The answer is the same, the same entries in the same order: only the lookup changes.
The tests run stock moto (their fleets are small); the inventory benchmark runs this.

    python bench/moto_tag_index.py -H 127.0.0.1 -p PORT     (moto_server's own arguments)
"""

from __future__ import annotations

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.server import main


def get_tags(self):
    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    # .get: the backend's tags are a defaultdict, and a lookup must not add an entry.
    tags = self.ec2_backend.tags.get(resource_id, {})
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in tags.items()
    ]


TaggedEC2Resource.get_tags = get_tags

if __name__ == "__main__":
    main()
