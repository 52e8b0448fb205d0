#!/usr/bin/env bash
# Give the image builder what Packer's ansible-local provisioner needs to apply packer/image.yml on
# the builder itself: a throw-away ansible-core in /opt/oce-build/venv and this collection (the
# uploaded `ansible-galaxy collection build` artifact). cleanup.sh removes both before capture.
#
#   ANSIBLE_CORE_VERSION  pinned ansible-core (2.19 needs Python >= 3.11: python3.11 on 22.04)
#   COLLECTION_TARBALL    the uploaded collection artifact
set -euo pipefail

version=${ANSIBLE_CORE_VERSION:?set ANSIBLE_CORE_VERSION, as packer/variables.pkr.hcl does}
tarball=${COLLECTION_TARBALL:?set COLLECTION_TARBALL to the uploaded collection artifact}
venv=/opt/oce-build/venv

log() { printf '[bootstrap-ansible] %s\n' "$*"; }
die() {
  printf '[bootstrap-ansible] ERROR: %s\n' "$*" >&2
  exit 1
}

[ -f "$tarball" ] || die "$tarball is missing: build it with 'ansible-galaxy collection build' (see packer/README.md)"
# shellcheck source=/dev/null
. /etc/os-release
case $VERSION_ID in
  22.04) python=python3.11 ;;
  24.04) python=python3.12 ;;
  *) die "Ubuntu $VERSION_ID is not supported (22.04 or 24.04)" ;;
esac

export DEBIAN_FRONTEND=noninteractive
cloud-init status --wait >/dev/null 2>&1 || true
apt-get -o DPkg::Lock::Timeout=600 -y -q update
apt-get -o DPkg::Lock::Timeout=600 -y -q install --no-install-recommends "$python" "$python-venv"

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "ansible-core==$version"
# The collection has no Galaxy dependencies (galaxy.yml); install it where ansible finds it by default.
"$venv/bin/ansible-galaxy" collection install --offline --no-deps --force \
  -p /usr/share/ansible/collections "$tarball"
log "ansible-core $version and $(basename "$tarball") ready"
