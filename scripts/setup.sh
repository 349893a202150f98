#!/usr/bin/env bash
# Set up qtctl on a Debian machine: system packages, a venv in .venv, the Python deps.
# Idempotent: installs only what is missing; re-installs Python deps only when pyproject changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${QTCTL_VENV:-.venv}
APT_PACKAGES=(redis-server libsystemd-dev pkg-config gcc)
# The monitoring tools the report is proven with (tests/test_prometheus_tools.py, test_nagios.py,
# test_alert_rules.py): node_exporter, promtool (in prometheus), the Monitoring Plugins, Nagios.
APT_PACKAGES+=(prometheus-node-exporter prometheus monitoring-plugins-basic monitoring-plugins-common)
APT_PACKAGES+=(nagios4-core)  # a real Nagios runs the check in tests/test_nagios.py

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
    # policy-rc.d keeps the packages' services (redis-server, prometheus, node_exporter) from
    # being started on the host; where the machine has none, a temporary one denies every start.
    local own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        own_policy=1
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod 755 /usr/sbin/policy-rc.d
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >/dev/null || rc=$?
    [ -z "$own_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || { say "apt-get install failed ($rc)"; exit "$rc"; }
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

# systemd's own test corpora for the installed version (tests/test_systemd_differential.py):
# the Debian source package, fetched with a private apt configuration (the host's sources, lists
# and cache are not touched), unpacked to its test/ folders only. Cached by version.
CORPUS_DIR=.cache/systemd-src  # tests/support/corpus.py reads it from here
CORPUS_PARTS=(test/fuzz test/units test/test-execute test/test-path src/test/test-env-file.c)

fetch_systemd_corpus() {
    local version codename work apt_opts orig
    [ -z "${QTCTL_SKIP_CORPUS:-}" ] || { say "QTCTL_SKIP_CORPUS set: no systemd corpus"; return; }
    version=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null) || { say "systemd not installed: no corpus"; return; }
    if [ -f "$CORPUS_DIR/$version/.complete" ]; then
        say "systemd $version corpus present"
        return
    fi
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    work="$CORPUS_DIR/apt"
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
        echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename main"
        echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename-updates main"
        echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $codename-security main"
    } > "$work/sources.list"
    work=$(cd "$work" && pwd)
    apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -qq)
    say "fetching the systemd $version source package (test corpora)"
    apt-get "${apt_opts[@]}" update
    (cd "$work" && apt-get "${apt_opts[@]}" source --download-only "systemd=$version" 2>&1 | grep -v "unsandboxed" >&2 || true)
    orig=$(ls "$work"/systemd_*.orig.tar.* 2>/dev/null | head -n1)
    [ -n "$orig" ] || { say "could not download the systemd $version source"; exit 1; }
    rm -rf "$CORPUS_DIR/$version.tmp" && mkdir -p "$CORPUS_DIR/$version.tmp"
    tar -xf "$orig" -C "$CORPUS_DIR/$version.tmp" --strip-components=1 --wildcards \
        "${CORPUS_PARTS[@]/#/*/}"
    rm -rf "$CORPUS_DIR/$version" && mv "$CORPUS_DIR/$version.tmp" "$CORPUS_DIR/$version"
    rm -rf "$work"
    touch "$CORPUS_DIR/$version/.complete"
}

install_system_packages
install_python_packages
fetch_systemd_corpus
say "ready: $VENV/bin/qtctl"
