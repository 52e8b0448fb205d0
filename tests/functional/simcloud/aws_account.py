"""What the AWS end-to-end tests do in moto as a user or an auditor would: store the tailnet key,
list what a deployment left behind."""

from __future__ import annotations

import boto3


def store_key(cloud, deployment, key):
    """What a user does once: the tailnet key in Secrets Manager, under the name the node reads."""
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=cloud.url)
    client.create_secret(Name=f"oce/{deployment}/tailscale", SecretString=key)


def ours(cloud, deployment):
    """The deployment's live instances and its VPCs, found by its tag."""
    ec2 = cloud.ec2
    tag = [{"Name": "tag:oce-deployment", "Values": [deployment]}]
    live = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=tag)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    return {"instances": live, "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]]}
