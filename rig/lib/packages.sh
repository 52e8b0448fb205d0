# shellcheck shell=bash
# What this machine needs from its package registries: Debian packages (apt) and the pinned
# Python virtualenv (PyPI).
# Sourced by rig/lib.sh (never on its own).

# What the Go builds need (the toolchain's fetch, the cgo compile, the packing): installed before
# they start, so that they can run beside the rest of rig_apt.
OCE_APT_BUILD=(zstd gcc g++ git curl unzip)
#   rig_apt [PACKAGE...]   (default: all the rig needs)
rig_apt() {
  # nftables: the simulated cloud's metadata DNAT, set from here inside each node's namespace.
  local pkgs=("${OCE_APT_BUILD[@]}" podman runc debootstrap docker-registry uidmap rsync bc python3-venv shellcheck nftables)
  [ $# -eq 0 ] || pkgs=("$@")
  local missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The controller's virtualenv, keyed by the requirements files, in two layers: rig/demo installs
# requirements-demo.txt (Ansible and the test model), rig/setup adds requirements-dev.txt (linters,
# Molecule, pytest, moto and the bundle of collections: most of the 1.3 GB), so a fresh machine's
# demo does not wait for the test tools.
# Its interpreter is Debian's own python3 (python3-venv), not the first python3 on PATH: Debian
# builds it with profile-guided and link-time optimization, linked statically, where a pyenv build
# is neither. Ansible, pytest, moto and the linters are most of the suite's CPU; the cloud playbook
# tests took 20 % less of it on Debian's (427 CPU-s, not 542). OCE_PYTHON names another.
OCE_PYTHON=${OCE_PYTHON:-/usr/bin/python3}
#   rig_venv [demo|dev]   (default dev)
rig_venv() {
  local layer=${1:-dev} key
  key=$({
    cat "$OCE_ROOT"/requirements{,-demo,-dev}.txt
    rig_python_identity
  } | sha256sum | cut -c1-12)
  export OCE_VENV=$OCE_CACHE/venv-$key
  # rig_setup asks for both layers: put the venv on PATH once.
  case ":$PATH:" in *":$OCE_VENV/bin:"*) ;; *) export PATH=$OCE_VENV/bin:$PATH ;; esac
  rig_venv_has "$layer" && return 0
  mkdir -p "$OCE_CACHE"
  # One builder at a time; the venv itself is built aside and renamed so a reader never sees half
  # of one, and a layer counts only once its marker is written.
  exec 9>"$OCE_CACHE/venv.lock"
  flock 9
  if ! rig_venv_has "$layer"; then
    if [ ! -x "$OCE_VENV/bin/python" ]; then
      log "python: building virtualenv $OCE_VENV"
      rm -rf "$OCE_VENV" "$OCE_VENV.tmp"
      [ "$OCE_PYTHON" != /usr/bin/python3 ] || rig_apt python3-venv
      "$OCE_PYTHON" -m venv "$OCE_VENV.tmp"
      "$OCE_VENV.tmp/bin/pip" install -q --upgrade pip
      mv "$OCE_VENV.tmp" "$OCE_VENV"
      # venv scripts carry their path in shebangs: rewrite them for the final location.
      grep -rlI "$OCE_VENV.tmp" "$OCE_VENV/bin" | xargs -r sed -i "s|$OCE_VENV.tmp|$OCE_VENV|g"
    fi
    log "python: installing requirements-$layer.txt into $OCE_VENV"
    "$OCE_VENV/bin/pip" install -q -r "$OCE_ROOT/requirements-$layer.txt"
    touch "$OCE_VENV/.complete-$layer"
  fi
  flock -u 9
}

# What a virtualenv made from OCE_PYTHON depends on: its path and exact build (a key's part).
rig_python_identity() {
  "$OCE_PYTHON" -c 'import sys; print(sys.executable, sys.version)'
}

# dev includes demo (requirements-dev.txt includes requirements-demo.txt).
rig_venv_has() {
  [ -f "$OCE_VENV/.complete-$1" ] || [ -f "$OCE_VENV/.complete-dev" ]
}
