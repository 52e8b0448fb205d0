# The one build of the golden image, for both clouds: the sources (aws.pkr.hcl, gcp.pkr.hcl) make
# the machine, these steps make the image. What differs per cloud is in local.<cloud>_build beside
# its source, looked up by the source's name.
#   packer build -only='*.aws' packer     # golden.amazon-ebs.aws
#   packer build -only='*.gcp' packer     # golden.googlecompute.gcp

locals {
  per_source = {
    aws = local.aws_build
    gcp = local.gcp_build
  }
}

build {
  name    = "golden"
  sources = ["source.amazon-ebs.aws", "source.googlecompute.gcp"]

  # 1. The collection (built with ansible-galaxy collection build) and a throw-away ansible-core.
  provisioner "file" {
    source      = local.collection_tarball
    destination = "/tmp/ollama_cloud-engine.tar.gz"
    generated   = true
  }
  provisioner "shell" {
    script           = "${path.root}/scripts/bootstrap-ansible.sh"
    environment_vars = local.bootstrap_env
    execute_command  = local.execute_command
  }

  # 2. The collection's roles, the NVIDIA driver first (image.yml), applied on the builder itself
  #    (ansible-local: no SSH round trips through Session Manager or IAP).
  provisioner "ansible-local" {
    command                 = "/opt/oce-build/venv/bin/ansible-playbook"
    playbook_file           = "${path.root}/image.yml"
    staging_directory       = "/tmp/oce-build/ansible"
    clean_staging_directory = true
    extra_arguments         = concat(local.ansible_extra_arguments, local.per_source[source.name].extra_arguments)
  }

  # 3. Nothing that belongs to this one machine may reach the image; 4. then check the result.
  provisioner "shell" {
    script          = "${path.root}/scripts/cleanup.sh"
    execute_command = local.execute_command
  }
  provisioner "shell" {
    script           = "${path.root}/scripts/validate.sh"
    environment_vars = concat(local.validate_env, local.per_source[source.name].validate_env)
    execute_command  = local.execute_command
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      image_name     = local.image_name[source.name]
      ollama_version = local.role_inputs.ollama_version
    }
  }
}
