# The plugins the templates need. `packer init packer` installs them; rig/packer-check builds the
# same versions from source and installs them offline. amazon 1.7.0 broke Session Manager builds,
# hence ~> 1.8.
packer {
  required_version = ">= 1.11.0"
  required_plugins {
    amazon = {
      version = "~> 1.8"
      source  = "github.com/hashicorp/amazon"
    }
    googlecompute = {
      version = "~> 1.2"
      source  = "github.com/hashicorp/googlecompute"
    }
    ansible = {
      version = "~> 1.1"
      source  = "github.com/hashicorp/ansible"
    }
  }
}
