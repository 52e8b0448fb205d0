# shellcheck shell=bash
# Programs built from the Go module proxy, cached by version: Go itself when the machine's is
# too old, Ollama (packed as a mirror serves it), Tailscale (packed as its static archive) and
# Headscale.
# Sourced by rig/lib.sh (never on its own).

# Every build here strips its binary's DWARF at link (-ldflags -w): the compiler need not make it
# either, a ninth of a Go build's CPU (packer's ansible plugin: 176 -> 154 CPU-s).
OCE_GO_GCFLAGS=all=-dwarf=false

# The Go module proxy this machine is configured with (GOPROXY, or an older Go's `go env`): its
# first http(s) entry. The rig names no proxy of its own.
rig_goproxy() {
  local list=${GOPROXY:-}
  [ -n "$list" ] || ! command -v go >/dev/null 2>&1 || list=$(go env GOPROXY)
  tr ',|' '\n' <<<"$list" | grep -m1 -E '^https?://' | sed 's|/*$||'
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

# Go module zips drop every `vendor/` directory, so Ollama's copy of llama.cpp arrives without
# its header-only dependencies (nlohmann/json, stb, miniaudio). llama.cpp's own vendored copies
# come from the llama-cpp-python sdist on PyPI.
rig_llama_vendor() {
  local dir=$OCE_CACHE/llama-vendor-$OCE_LLAMA_VENDOR_SDIST
  if [ ! -f "$dir/.complete" ]; then
    log "ollama: fetching llama.cpp's vendored headers ($OCE_LLAMA_VENDOR_SDIST sdist from PyPI)"
    mkdir -p "$OCE_CACHE/pypi"
    # The sdist of this one package (--no-binary :all: would also build pip's metadata step's
    # build tools from their sources, minutes on a fresh machine).
    pip download -q --no-deps --no-binary "${OCE_LLAMA_VENDOR_SDIST%%==*}" --find-links "$OCE_CACHE/pypi" \
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
    # No -g in the C/C++ flags (cgo's default is "-O2 -g"): the binary is stripped (-s -w) anyway,
    # and llama.cpp's debug info is much of the compile time. cgo-cc.sh compiles what the rig's
    # model never runs at -O1 and precompiles llama.cpp's model header: 792 -> 644 CPU-s, and
    # 416 -> 334 s on 2 cores.
    CC="'$OCE_ROOT/rig/lib/cgo-cc.sh' gcc" CXX="'$OCE_ROOT/rig/lib/cgo-cc.sh' g++" \
      CGO_CPPFLAGS="-I$vendor" CGO_CFLAGS=-O2 CGO_CXXFLAGS=-O2 CGO_ENABLED=1 GOBIN=$(dirname "$bin") \
      GOFLAGS=-buildvcs=false go install -trimpath -gcflags "$OCE_GO_GCFLAGS" \
      -ldflags "-s -w -X github.com/ollama/ollama/version.Version=$version" \
      "github.com/ollama/ollama@v$version"
  fi
  if [ ! -f "$mirror/sha256sum.txt" ]; then
    log "ollama: packing $tarball"
    local stage
    stage=$(mktemp -d)
    mkdir -p "$stage/bin" "$stage/lib/ollama" "$mirror"
    install -m 0755 "$bin" "$stage/bin/ollama"
    # Deterministic archive: the same build gives the same checksum. Level 9, not 19: 1.5 MB
    # more on a 40 MB binary that only crosses this machine, for 3 s of CPU instead of 40.
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - bin lib \
      | zstd -q -9 -T0 -o "$tarball.tmp"
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

# What rig/test builds beyond the demo: the older Ollama, Tailscale and Headscale.
rig_other_builds() {
  rig_ollama_version "$OCE_OLLAMA_PREVIOUS_VERSION"
  rig_tailscale
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
    CGO_ENABLED=0 GOBIN=$bin.tmp go install -trimpath -gcflags "$OCE_GO_GCFLAGS" \
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
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -gcflags "$OCE_GO_GCFLAGS" -ldflags "-s -w" \
      -o "$OCE_HEADSCALE_BIN.tmp" ./cmd/headscale)
    mv "$OCE_HEADSCALE_BIN.tmp" "$OCE_HEADSCALE_BIN"
  fi
}
