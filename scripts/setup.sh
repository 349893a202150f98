#!/usr/bin/env bash
# Set up qtctl on a Debian machine: system packages, a venv in .venv, the Python deps.
# Idempotent: installs only what is missing; re-installs Python deps only when pyproject changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${QTCTL_VENV:-.venv}
APT_PACKAGES=(redis-server libsystemd-dev pkg-config gcc)

say() { printf 'setup: %s\n' "$*" >&2; }

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

install_system_packages() {
    local need
    need=$(missing_packages "${APT_PACKAGES[@]}")
    "$PYTHON" -c 'import ensurepip' 2>/dev/null || need+=" python3-venv"
    "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || need+=" python3-dev"
    need=$(echo $need)
    if [ -z "$need" ]; then
        say "system packages present"
        return
    fi
    say "installing Debian packages: $need"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # policy-rc.d keeps the package's redis-server from being started on the host.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >/dev/null
}

install_python_packages() {
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
    local stamp="$VENV/.qtctl-setup" want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import qtctl, pystemd, redis, typer' 2>/dev/null; then
        say "python packages up to date"
        return
    fi
    say "installing qtctl and its Python dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel 2>&1 | grep -v '^WARNING: Location' >&2 || true
    # torch is pinned exactly: a looser pin pulls GBs of CUDA wheels.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,rl]" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$VENV/bin/python" -c 'import qtctl, pystemd, redis, typer, torch' || { say "python install failed"; exit 1; }
    echo "$want" > "$stamp"
}

install_system_packages
install_python_packages
say "ready: $VENV/bin/qtctl"
