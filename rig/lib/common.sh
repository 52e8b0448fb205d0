# shellcheck shell=bash source-path=SCRIPTDIR
# The rig's settings and helpers: the pinned versions (rig/versions.env), the paths of the
# cache and of what the rig makes in it, log/die, and rig_write.
# Sourced by rig/lib.sh (never on its own).

# shellcheck source=../versions.env
set -a
. "$OCE_ROOT/rig/versions.env"
set +a
export OCE_ROOT
export OCE_CACHE=${OCE_CACHE:-$HOME/.cache/ollama-cloud-engine}
export OCE_RIG_DIR=$OCE_CACHE/rig
export CONTAINERS_CONF=$OCE_RIG_DIR/containers.conf
export OCE_MIRROR_DIR=$OCE_CACHE/mirror/ollama/v$OCE_OLLAMA_VERSION
export OCE_OLLAMA_TARBALL=$OCE_MIRROR_DIR/ollama-linux-amd64.tar.zst
export OCE_HOST_OLLAMA=$OCE_CACHE/ollama/$OCE_OLLAMA_VERSION/bin/ollama
export OCE_GGUF=$OCE_CACHE/models/gemma-3-270m-q4_k_m.gguf
export OCE_REGISTRY_URL=http://127.0.0.1:$OCE_REGISTRY_PORT
export OCE_RIG_VARS=$OCE_RIG_DIR/vars.yml
export OCE_RIG_PREVIOUS=$OCE_RIG_DIR/previous.yml
export OCE_REGISTRY_IMAGE=localhost/oce-registry:$OCE_DEBIAN_SUITE
export OCE_TAILSCALE_TARBALL=$OCE_CACHE/mirror/tailscale/tailscale_${OCE_TAILSCALE_VERSION}_amd64.tgz
export OCE_HEADSCALE_BIN=$OCE_CACHE/headscale/$OCE_HEADSCALE_VERSION/bin/headscale
export OCE_HEADSCALE_URL=http://$OCE_HEADSCALE_IP:8080
# The simulated cloud: a stock cloud image (cloud-init, sshd) and the artifact mirror nodes
# download from over HTTP, served by the oce-blobs nginx from $OCE_CACHE/mirror.
export OCE_CLOUD_IMAGE=localhost/oce-cloud:$OCE_DEBIAN_SUITE
export OCE_MIRROR_URL=http://$OCE_BLOBS_IP:8080/mirror
export OCE_TAILSCALE_URL=$OCE_MIRROR_URL/tailscale/tailscale_${OCE_TAILSCALE_VERSION}_amd64.tgz
export OCE_OLLAMA_URL=$OCE_MIRROR_URL/ollama/v$OCE_OLLAMA_VERSION/ollama-linux-amd64.tar.zst

log() { printf '\033[1m[rig]\033[0m %s\n' "$*" >&2; }
die() { printf '[rig] ERROR: %s\n' "$*" >&2; exit 1; }

# Write stdin to $1 through a rename, and only when it changes: a run that reads the file at the
# same time (another checkout's tests, the demo) never sees it empty or half written.
rig_write() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else chmod 0644 "$tmp" && mv -f "$tmp" "$1"; fi
}
