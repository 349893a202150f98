#!/bin/bash
# PID 1 of a fresh pid/mount/net/uts/ipc namespace set: build a copy-on-write overlay of / on a
# tmpfs, copy the staged tree onto it, and exec a real systemd inside. Nothing reaches the host:
# every write lands in the tmpfs, which dies with the mount namespace.
# Usage (from qtctl.sandbox only): sandbox_boot.sh STAGE_DIR [BIND_PATH...]
# Each BIND_PATH is bind-mounted read-only at the same path inside (for a tree under /tmp or /run,
# which the box replaces with fresh tmpfs).
set -eu
if [ "$$" != 1 ]; then
    echo "sandbox_boot.sh: refusing to run outside a new pid namespace (pid $$ is not 1)" >&2
    exit 99
fi
stage=$1
shift
base=/mnt
mount --make-rprivate /
mount -t tmpfs qtctl-sandbox "$base"
mkdir -p "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
r=$base/root
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
# Units that would act on the shared kernel, or are useless in a box.
for unit in systemd-sysctl.service systemd-binfmt.service systemd-modules-load.service \
    proc-sys-fs-binfmt_misc.automount systemd-firstboot.service getty.target \
    console-getty.service systemd-timesyncd.service postgresql.service e2scrub_reap.service; do
    ln -sf /dev/null "$r/etc/systemd/system/$unit"
done
mkdir -p "$r/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' > "$r/etc/systemd/journald.conf.d/qtctl-sandbox.conf"
cp -a "$stage"/. "$r"/
for path in "$@"; do
    mkdir -p "$r$path"
    mount --rbind "$path" "$r$path"
    mount -o remount,bind,ro "$r$path"
done
ln -sf /etc/systemd/system/sandbox-default.target "$r/etc/systemd/system/default.target"
cd "$r"
export container=other
exec chroot . /lib/systemd/systemd --system --log-target=journal
