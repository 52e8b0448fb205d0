# Placeholder values for the variables that name a cloud account. rig/packer-check validates the
# templates with this file; copy it, fill in yours, and pass it with -var-file. Nothing here is a
# secret: credentials come from the environment (OIDC in CI, see README.md).
aws_region               = "us-east-1"
ami_regions              = ["us-west-2"]
aws_subnet_id            = "subnet-0123456789abcdef0"
aws_security_group_ids   = ["sg-0123456789abcdef0"]
aws_iam_instance_profile = "oce-packer-builder"

gcp_project_id = "my-gcp-project"
gcp_zone       = "us-central1-a"
gcp_network    = "oce-images"
gcp_subnetwork = "oce-images-us-central1"
