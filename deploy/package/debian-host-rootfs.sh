#!/usr/bin/env bash
# Builds (once, cached) a fresh Debian 12 root filesystem with systemd, for the host-install e2e test
# (test/e2e/host-install.test.ts): debootstrap from the Debian mirror this machine's apt uses, nothing else.
# Prints the path of the tarball: /var/cache/edgeplane/debian12-host.tar.
#
# The rootfs has what a minimal Debian 12 server has (minbase + systemd as init + dbus + procps); no Node, no
# docker, no Edgeplane. Units that would touch the machine when the rootfs runs in a container sharing its network
# (udev, networkd, timesyncd, getty) are masked.
set -euo pipefail
CACHE=${EDGE_CACHE:-/var/cache/edgeplane}
OUT="$CACHE/debian12-host.tar"
STAMP_WANT="v1 minbase systemd systemd-sysv dbus procps"
mkdir -p "$CACHE/locks"
exec 9>"$CACHE/locks/debian12-host.lock"
flock 9
if [ -f "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then
  echo "$OUT"
  exit 0
fi
# The mirror of this machine's apt sources (deb822 or one-line format); deb.debian.org otherwise.
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d "$CACHE/build/debian12-host.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "debootstrap bookworm from $mirror into $work (log: $CACHE/build/debian12-host.log)" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps bookworm "$work/root" "$mirror" \
  >"$CACHE/build/debian12-host.log" 2>&1 || { tail -20 "$CACHE/build/debian12-host.log" >&2; exit 1; }
root="$work/root"
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service \
  systemd-networkd.service systemd-timesyncd.service getty@tty1.service console-getty.service \
  systemd-firstboot.service systemd-hwdb-update.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
echo "edge-test-host" >"$root/etc/hostname"
: >"$root/etc/machine-id"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
tar -C "$root" -cf "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
echo "$STAMP_WANT" >"$OUT.stamp"
echo "$OUT"
