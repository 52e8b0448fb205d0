# shellcheck shell=bash
# What this machine needs from its package registries: Debian packages (apt) and the pinned
# Python virtualenv (PyPI).
# Sourced by rig/lib.sh (never on its own).

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
