# The AWS golden image: Canonical's Ubuntu LTS, the NVIDIA driver, Ollama and Tailscale (installed,
# not logged in), cleaned for cloning. Built privately: no public IP, reached through Session
# Manager, IMDSv2 only, encrypted gp3 root. The steps are the one build in build.pkr.hcl:
# `packer build -only='*.aws' packer`.

locals {
  aws_tags = merge(local.tags, {
    "Name"              = local.image_id.aws
    "oce-image"         = local.image_name.aws
    "oce-nvidia-driver" = var.aws_nvidia_driver_source == "none" ? "none" : local.role_inputs.nvidia_driver_branch
    # Where the driver came from: DKMS-built (cuda-repo) modules are unsigned.
    "oce-nvidia-source" = var.aws_nvidia_driver_source
  })

  # What the build passes for this source only (build.pkr.hcl looks it up by source name).
  aws_build = {
    extra_arguments = [
      "--extra-vars", "cloud=aws",
      "--extra-vars", "nvidia_driver_source=${var.aws_nvidia_driver_source}",
      "--extra-vars", "nvidia_driver_kernel_flavour=aws",
      "--extra-vars", "ollama_gpu=${var.aws_nvidia_driver_source != "none"}",
      "--extra-vars", "monitoring_agent_gpu=${var.aws_nvidia_driver_source != "none"}",
    ]
    validate_env = ["NVIDIA_DRIVER_SOURCE=${var.aws_nvidia_driver_source}"]
  }
}

source "amazon-ebs" "aws" {
  region          = var.aws_region
  ami_name        = local.image_id.aws
  ami_description = "Ollama ${local.role_inputs.ollama_version} on Ubuntu ${var.ubuntu_version} (ollama_cloud.engine golden image)"
  ami_regions     = var.ami_regions
  instance_type   = var.aws_instance_type

  source_ami_filter {
    filters = {
      name                = local.ubuntu[var.ubuntu_version].ami_name
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }

  # IMDSv2 only, on the builder and on every instance launched from the AMI.
  imds_support = "v2.0"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.root_volume_gb
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }
  # kms_key_id encrypts in aws_region only; each copy takes its region's key from region_kms_key_ids.
  encrypt_boot       = true
  kms_key_id         = var.aws_kms_key_id != "" ? var.aws_kms_key_id : null
  region_kms_key_ids = var.aws_region_kms_key_ids

  # Private build: no public IP, no inbound rule needed; SSH runs inside a Session Manager session.
  associate_public_ip_address = false
  subnet_id                   = var.aws_subnet_id != "" ? var.aws_subnet_id : null
  security_group_ids          = var.aws_security_group_ids
  iam_instance_profile        = var.aws_iam_instance_profile
  communicator                = "ssh"
  ssh_username                = "ubuntu"
  ssh_interface               = "session_manager"
  ssh_timeout                 = "20m"

  deprecate_at = timeadd(local.built_at, "${var.deprecate_after_days * 24}h")

  run_tags        = merge(local.builder_labels.aws, { "Name" = "packer-${local.image_id.aws}" })
  run_volume_tags = local.aws_tags
  snapshot_tags   = local.aws_tags
  tags            = local.aws_tags

  # Copies to ami_regions can take long.
  aws_polling {
    delay_seconds = 15
    max_attempts  = 240
  }
}
