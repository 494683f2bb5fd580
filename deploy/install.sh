#!/usr/bin/env bash
# Edgeplane machine setup: everything the tests, `npm run dev` and CI need on a Debian bookworm host (as root).
#
#   bash deploy/install.sh                 # every step (idempotent; a no-op run takes a few seconds)
#   bash deploy/install.sh STEP...         # only these steps: packages kube-apiserver docker image guest node
#   bash deploy/install.sh image TAG [--cmd JSON] [--entrypoint JSON] [--env K=V]... [--workdir DIR]
#                                [--expose PORT[/proto]]... [--overlay DIR]
#                                          # build TAG from the busybox rootfs unless an identical one exists
#   bash deploy/install.sh guest-paths     # print kernel=, initrd=, disk=, accel= of the QEMU test guest (builds it
#                                          # if needed)
#
# Environment: EDGE_CACHE (default /var/cache/edgeplane) holds the built binaries, the guest and stamps.
#              EDGE_K8S_VERSION (default v1.32.13) is the kube-apiserver to build (match kubectl 1.32).
set -euo pipefail

EDGE_CACHE=${EDGE_CACHE:-/var/cache/edgeplane}
K8S_VERSION=${EDGE_K8S_VERSION:-v1.32.13}
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-/usr/local/go/bin/go}
export GOTOOLCHAIN=local
export HOME=${HOME:-/root} # the Go caches live under $HOME
export DEBIAN_FRONTEND=noninteractive
BUSYBOX_IMAGE=edgeplane/busybox:latest

log() { echo "[install] $*"; }
die() {
  echo "[install] ERROR: $*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------------------------------------
PACKAGES=(nats-server etcd-server docker.io runsc qemu-system-x86 qemu-utils busybox-static cpio mtools syslinux
  syslinux-common fdisk iptables iproute2 curl ca-certificates openssl kubectl
  # monitoring (promtool, a real Prometheus), the dashboard's browser test, packaging and the host-install test,
  # fault injection, and the network data plane's tests
  prometheus chromium debootstrap systemd-container lintian fakeroot faketime iperf3 dnsmasq-base bridge-utils
  nftables)

pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

step_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if [ "$p" = kubectl ] && have kubectl; then
      log "kubectl: present ($(command -v kubectl))"
    elif pkg_installed "$p"; then
      log "$p: present"
    else
      log "$p: missing"
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  have apt-get || die "apt-get not found: this script targets Debian bookworm"
  log "apt-get update"
  apt-get update -qq || die "apt-get update failed"
  log "installing: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/edgeplane-apt.log 2>&1 ||
    die "apt-get install ${missing[*]} failed (see /tmp/edgeplane-apt.log)"
}

# ---------------------------------------------------------------------------------------------------------
# kube-apiserver (and etcd 3.5 if needed) through the Go module proxy
# ---------------------------------------------------------------------------------------------------------

# go_scratch_build NAME MODULE VERSION PKG STAGING_PATCH OUT [LDFLAGS_X]
#   Builds PKG (a main package inside MODULE@VERSION) in a scratch module under $EDGE_CACHE/build/NAME.
#   If STAGING_PATCH is set (e.g. v0.32.13), every `k8s.io/X => ./staging/src/k8s.io/X` replace directive of
#   MODULE's own go.mod is turned into `k8s.io/X => k8s.io/X STAGING_PATCH`.
go_scratch_build() {
  local name=$1 module=$2 version=$3 pkg=$4 staging=$5 out=$6 ldx=${7:-}
  [ -x "$GO" ] || die "Go toolchain not found at $GO (set GO=...)"
  local dir="$EDGE_CACHE/build/$name-$version"
  rm -rf "$dir" && mkdir -p "$dir"
  local gomod
  gomod=$(cd "$dir" && "$GO" mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "could not download $module@$version from the Go module proxy"
  {
    echo "module edgeplane.local/build/$name"
    echo
    grep -E '^go [0-9]' "$gomod" || echo "go 1.23.0"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require $module $version"
    if [ -n "$staging" ]; then
      echo
      echo "replace ("
      sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
      echo ")"
    fi
  } >"$dir/go.mod"
  # `go get` of the main package records every requirement it needs; then build it.
  (cd "$dir" && "$GO" get "$pkg@$version" && echo "+ go build $pkg" &&
    CGO_ENABLED=0 "$GO" build -trimpath -ldflags="-s -w $ldx" -o "$out.tmp" "$pkg") || return 1
  mv "$out.tmp" "$out"
}

step_kube_apiserver() {
  local bin="$EDGE_CACHE/bin/kube-apiserver" stamp="$EDGE_CACHE/bin/kube-apiserver.version"
  mkdir -p "$EDGE_CACHE/bin"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$K8S_VERSION" ]; then
    log "kube-apiserver $K8S_VERSION: present ($bin)"
    return 0
  fi
  local staging="v0${K8S_VERSION#v1}"
  log "kube-apiserver $K8S_VERSION: building through the Go module proxy (10-20 min on 2 cores)"
  local t0=$SECONDS buildlog="$EDGE_CACHE/build/kube-apiserver.log"
  local ldx="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldx+=" -X k8s.io/component-base/version.gitMajor=1"
  ldx+=" -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ldx+=" -X k8s.io/component-base/version.gitTreeState=clean"
  mkdir -p "$EDGE_CACHE/build"
  log "  (log: $buildlog)"
  if go_scratch_build kube-apiserver k8s.io/kubernetes "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver \
    "$staging" "$bin" "$ldx" >"$buildlog" 2>&1; then
    echo "$K8S_VERSION" >"$stamp"
    log "kube-apiserver $K8S_VERSION: built in $((SECONDS - t0)) s"
    return 0
  fi
  tail -n 30 "$buildlog" >&2
  log "kube-apiserver build FAILED; falling back to the standalone k8s.io/apiextensions-apiserver $staging"
  if go_scratch_build apiextensions-apiserver k8s.io/apiextensions-apiserver "$staging" \
    k8s.io/apiextensions-apiserver "" "$EDGE_CACHE/bin/apiextensions-apiserver" >>"$buildlog" 2>&1; then
    echo "$staging" >"$EDGE_CACHE/bin/apiextensions-apiserver.version"
    die "kube-apiserver could not be built; only apiextensions-apiserver is available at $EDGE_CACHE/bin"
  fi
  die "neither kube-apiserver nor apiextensions-apiserver could be built"
}


# ---------------------------------------------------------------------------------------------------------
# Docker + gVisor (runsc)
# ---------------------------------------------------------------------------------------------------------
DOCKERD_LOG=/var/log/edgeplane-dockerd.log
DAEMON_JSON=/etc/docker/daemon.json

docker_answers() { timeout "${1:-5}" docker info >/dev/null 2>&1; }

# daemon_json_merge [KEY=JSON]...: merges the runsc runtime (and the given top-level keys) into daemon.json,
# keeping everything else. Prints "changed" when the file was rewritten.
daemon_json_merge() {
  have node || die "node is needed to edit $DAEMON_JSON"
  mkdir -p /etc/docker
  node - "$DAEMON_JSON" "$@" <<'JS'
const fs = require('node:fs');
const [file, ...pairs] = process.argv.slice(2);
let text = '';
try { text = fs.readFileSync(file, 'utf8'); } catch {}
let cfg = {};
if (text.trim()) {
  try { cfg = JSON.parse(text); } catch (e) { console.error(`invalid JSON in ${file}: ${e.message}`); process.exit(2); }
}
const before = JSON.stringify(cfg);
cfg.runtimes = cfg.runtimes ?? {};
cfg.runtimes.runsc = { ...(cfg.runtimes.runsc ?? {}), path: '/usr/bin/runsc', runtimeArgs: ['--network=host'] };
for (const p of pairs) { const i = p.indexOf('='); cfg[p.slice(0, i)] = JSON.parse(p.slice(i + 1)); }
if (JSON.stringify(cfg) !== before) {
  fs.writeFileSync(file + '.tmp', JSON.stringify(cfg, null, 2) + '\n');
  fs.renameSync(file + '.tmp', file);
  console.log('changed');
}
JS
}

dockerd_pid() {
  local pid
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Cgroups: dockerd (runc) needs a cgroup hierarchy. Mount cgroup2 if nothing is mounted (bare sandboxes).
ensure_cgroups() {
  if [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
    log "docker: /sys/fs/cgroup is empty, mounting cgroup2"
    mount -t cgroup2 none /sys/fs/cgroup || log "docker: mounting cgroup2 failed"
  fi
}

start_dockerd() {
  ensure_cgroups
  log "docker: starting dockerd (log: $DOCKERD_LOG)"
  : >>"$DOCKERD_LOG"
  echo "---- $(date -Is) edgeplane install.sh starts dockerd" >>"$DOCKERD_LOG"
  # fd 9 is the install lock: dockerd must not inherit it.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 60); do
    docker_answers 2 && return 0
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  return 1
}

step_docker_daemon() {
  have dockerd || die "dockerd not found (package docker.io)"
  have runsc || die "runsc not found (package runsc)"
  local changed
  changed=$(daemon_json_merge) || die "could not update $DAEMON_JSON"
  if docker_answers 5; then
    if [ "$changed" = changed ]; then
      local pid
      pid=$(dockerd_pid || true)
      [ -n "$pid" ] || die "docker: $DAEMON_JSON changed but the running dockerd's pid is unknown; restart it by hand"
      log "docker: $DAEMON_JSON changed, reloading dockerd (SIGHUP $pid)"
      kill -HUP "$pid"
      sleep 1
    else
      log "docker: daemon answers"
    fi
  else
    if ! start_dockerd; then
      # Known sandbox problems, each fixed once and retried: the nf_tables iptables backend not being usable
      # (switch to iptables-legacy), and overlayfs not being usable for overlay2 (switch to vfs).
      pkill_own_dockerd
      if tail -n 50 "$DOCKERD_LOG" | grep -qiE 'iptables|nf_tables|nftables'; then
        log "docker: iptables problem, switching to iptables-legacy"
        update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
        update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null
        start_dockerd || true
      fi
      if ! docker_answers 2 && tail -n 50 "$DOCKERD_LOG" | grep -qiE 'overlay|graphdriver|storage-driver'; then
        pkill_own_dockerd
        log "docker: overlay2 unusable, switching storage driver to vfs"
        daemon_json_merge 'storage-driver="vfs"' >/dev/null
        start_dockerd || true
      fi
      docker_answers 2 || {
        tail -n 20 "$DOCKERD_LOG" >&2
        die "docker: dockerd does not start (see $DOCKERD_LOG)"
      }
    fi
  fi
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' ||
    die "docker: runtime runsc is not registered (check $DAEMON_JSON and $DOCKERD_LOG)"
  log "docker: runtime runsc registered"
}

pkill_own_dockerd() {
  local pid
  pid=$(dockerd_pid || true)
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    sleep 2
  fi
}

step_docker_verify() {
  local stamp="$EDGE_CACHE/stamps/docker-runsc" want
  want="$(runsc --version 2>/dev/null | head -1) / $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "docker: runsc verified earlier ($want)"
    return 0
  fi
  log "docker: verifying runsc (docker run --runtime=runsc)"
  timeout 60 docker run --rm --runtime=runsc --network none "$BUSYBOX_IMAGE" true ||
    die "docker: 'docker run --runtime=runsc' failed"
  local port name="edgeplane-install-probe-$$"
  port=$(free_port)
  docker rm -f "$name" >/dev/null 2>&1 || true
  timeout 60 docker run -d --name "$name" --runtime=runsc -p "127.0.0.1:$port:80" "$BUSYBOX_IMAGE" \
    /bin/sh -c 'echo edgeplane-probe >/tmp/index.html; exec /bin/httpd -f -p 80 -h /tmp' >/dev/null ||
    die "docker: could not start a runsc container with a published port"
  local ok=""
  for _ in $(seq 1 40); do
    if curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null | grep -q edgeplane-probe; then
      ok=1
      break
    fi
    sleep 0.25
  done
  docker rm -f "$name" >/dev/null 2>&1 || true
  [ -n "$ok" ] || die "docker: a runsc container's published port 127.0.0.1:$port is not reachable"
  mkdir -p "$EDGE_CACHE/stamps"
  echo "$want" >"$stamp"
  log "docker: runsc verified (run + published port)"
}

free_port() {
  node -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# ---------------------------------------------------------------------------------------------------------
# Test images from busybox-static (never pulled)
# ---------------------------------------------------------------------------------------------------------

# busybox_rootfs DIR: a minimal root file system: /bin/busybox + applet symlinks, passwd/group, /tmp, /var/www
# (with an index.html).
busybox_rootfs() {
  local root=$1
  # Every applet in /bin (so /bin/httpd, /bin/sh ...); /sbin, /usr/bin and /usr/sbin point there.
  mkdir -p "$root"/{bin,usr,etc,tmp,var/www,root,proc,sys,dev}
  ln -s bin "$root/sbin"
  ln -s ../bin "$root/usr/bin"
  ln -s ../bin "$root/usr/sbin"
  cp /bin/busybox "$root/bin/busybox"
  chroot "$root" /bin/busybox --install -s /bin
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  echo '<html><body><h1>edgeplane test page</h1></body></html>' >"$root/var/www/index.html"
}

# ensure_image TAG [--cmd JSON] [--entrypoint JSON] [--env K=V]... [--workdir DIR] [--expose PORT]...
#              [--overlay DIR]
#   Builds TAG from the busybox rootfs (plus the files of --overlay DIR) with `docker import --change`, unless an
#   image TAG built from the same specification exists (label edgeplane.image.spec).
ensure_image() {
  local tag=$1
  shift
  local changes=() overlay="" spec
  spec="v2 busybox=$(sha256sum /bin/busybox | cut -c1-16)"
  local cmd='["/bin/sh"]'
  while [ $# -gt 0 ]; do
    case "$1" in
    --cmd) cmd=$2 ;;
    --entrypoint) changes+=("ENTRYPOINT $2") ;;
    --env) changes+=("ENV $2") ;;
    --workdir) changes+=("WORKDIR $2") ;;
    --expose) changes+=("EXPOSE $2") ;;
    --overlay) overlay=$2 ;;
    *) die "image: unknown option $1" ;;
    esac
    shift 2 || die "image: option $1 needs a value"
  done
  changes+=("CMD $cmd")
  spec+=" changes=$(printf '%s\n' "${changes[@]}" | sha256sum | cut -c1-16)"
  if [ -n "$overlay" ]; then
    [ -d "$overlay" ] || die "image: overlay $overlay is not a directory"
    spec+=" overlay=$(cd "$overlay" && find . -type f -print0 | sort -z | xargs -0r sha256sum | sha256sum | cut -c1-16)"
  fi
  local have_spec
  have_spec=$(docker image inspect -f '{{index .Config.Labels "edgeplane.image.spec"}}' "$tag" 2>/dev/null || true)
  if [ "$have_spec" = "$spec" ]; then
    log "image $tag: present"
    return 0
  fi
  log "image $tag: building from busybox-static"
  local tmp
  tmp=$(mktemp -d)
  busybox_rootfs "$tmp/root"
  [ -z "$overlay" ] || cp -a "$overlay/." "$tmp/root/"
  local args=() c
  for c in "${changes[@]}"; do args+=(--change "$c"); done
  args+=(--change "LABEL edgeplane.image.spec=\"$spec\"")
  if ! tar -C "$tmp/root" --numeric-owner -c . | docker import "${args[@]}" - "$tag" >/dev/null; then
    rm -rf "$tmp"
    die "image $tag: docker import failed"
  fi
  rm -rf "$tmp"
  log "image $tag: built"
}

step_image() { ensure_image "$BUSYBOX_IMAGE"; }

# ---------------------------------------------------------------------------------------------------------
# QEMU test guest: Debian cloud kernel + busybox initramfs, and the same two on a bootable disk image
# ---------------------------------------------------------------------------------------------------------
GUEST_DIR="$EDGE_CACHE/guest"

# The guest's /init. Prints EDGEPLANE-GUEST-READY on the console (ttyS0), then waits for the ACPI power button
# (QMP system_powerdown) on its evdev device and powers off. With `edgeplane.probe` on the kernel command line
# it powers off right after the marker (used by the KVM probe). In the background it brings up its virtio NICs,
# each by DHCP (udhcpc), printing `EDGEPLANE-GUEST-NET <if> <mac> <address>/<prefix>` per lease, and serves
# /etc/www (its host name) with busybox httpd on port 8080, so tests can reach it over a Network.
guest_init_script() {
  cat <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run
mount -t devpts devpts /dev/pts
insmod /lib/modules/evdev.ko 2>/dev/null
insmod /lib/modules/button.ko 2>/dev/null
ev=""
for n in /sys/class/input/event*/device/name; do
  [ -f "$n" ] || continue
  case "$(cat "$n")" in
  *"Power Button"*) ev=${n%/device/name}; ev=/dev/input/${ev##*/} ;;
  esac
done
hostname edgeplane-guest
if grep -q edgeplane.probe /proc/cmdline; then
  echo "EDGEPLANE-GUEST-READY probe" >/dev/console
  poweroff -f
fi
cat >/etc/udhcpc.script <<'SCRIPT'
#!/bin/sh
case "$1" in
bound | renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
  echo "EDGEPLANE-GUEST-NET $interface $(cat /sys/class/net/$interface/address) $ip/$mask" >/dev/console
  ;;
esac
SCRIPT
chmod 755 /etc/udhcpc.script
(
  for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
    insmod /lib/modules/$m.ko 2>/dev/null
  done
  ip link set lo up
  for n in /sys/class/net/eth*; do
    [ -e "$n" ] || continue
    i=${n##*/}
    ip link set "$i" up
    udhcpc -i "$i" -s /etc/udhcpc.script -t 20 -T 2 -A 3 -b -q >/dev/null 2>&1 &
  done
  mkdir -p /etc/www && echo edgeplane-guest >/etc/www/index.html
  httpd -p 8080 -h /etc/www
) &
if [ -n "$ev" ]; then
  # Open the power button's event device before announcing readiness, so a press that comes right after the
  # marker is buffered; any event on it (press or release) means: shut down.
  exec 3<"$ev"
  (head -c 1 <&3 >/dev/null && echo "EDGEPLANE-GUEST-POWERDOWN" >/dev/console && sync && poweroff -f) &
fi
echo "EDGEPLANE-GUEST-READY power-button=${ev:-none}" >/dev/console
while :; do sleep 3600; done
INIT
}

guest_build() {
  mkdir -p "$GUEST_DIR"
  local tmp
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt-get download runs as _apt
  if [ ! -s "$GUEST_DIR/vmlinuz" ] || [ ! -s "$GUEST_DIR/modules/virtio_pci.ko" ]; then
    local pkg
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
    if [ -z "$pkg" ]; then
      log "guest: apt-get update (to resolve linux-image-cloud-amd64)"
      apt-get update -qq || die "apt-get update failed"
      pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
    fi
    [ -n "$pkg" ] || die "guest: cannot resolve linux-image-cloud-amd64 to a kernel package"
    log "guest: downloading $pkg"
    (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) || die "guest: apt-get download $pkg failed"
    dpkg -x "$tmp"/linux-image-*.deb "$tmp/x" || die "guest: dpkg -x failed"
    local mods
    mods=$(echo "$tmp"/x/lib/modules/*/kernel/drivers)
    mkdir -p "$GUEST_DIR/modules"
    cp "$mods/acpi/button.ko" "$mods/input/evdev.ko" "$mods"/virtio/virtio{,_ring,_pci,_pci_modern_dev,_pci_legacy_dev}.ko \
      "$mods/net/virtio_net.ko" "$mods/net/net_failover.ko" "$mods/../net/core/failover.ko" "$GUEST_DIR/modules/" ||
      die "guest: modules not found in $pkg"
    cp "$tmp"/x/boot/vmlinuz-* "$GUEST_DIR/vmlinuz.tmp" && mv "$GUEST_DIR/vmlinuz.tmp" "$GUEST_DIR/vmlinuz"
    echo "$pkg" >"$GUEST_DIR/kernel.version"
    rm -f "$GUEST_DIR/initrd.gz" "$GUEST_DIR/accel"
  fi
  local root="$tmp/initrd"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  chroot "$root" /bin/busybox --install -s
  cp "$GUEST_DIR"/modules/*.ko "$root/lib/modules/"
  guest_init_script >"$root/init"
  chmod 755 "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -6) >"$GUEST_DIR/initrd.gz.tmp" ||
    die "guest: building the initramfs failed"
  mv "$GUEST_DIR/initrd.gz.tmp" "$GUEST_DIR/initrd.gz"
  guest_spec >"$GUEST_DIR/initrd.spec"
  rm -rf "$tmp"
}

guest_spec() { { guest_init_script; sha256sum /bin/busybox; } | sha256sum | cut -c1-16; }

# The disk image's syslinux configuration: boot the kernel + initramfs of its FAT partition, console on ttyS0.
guest_syslinux_cfg() {
  printf '%s\n' 'DEFAULT linux' 'PROMPT 0' 'TIMEOUT 0' 'LABEL linux' '  KERNEL /vmlinuz' '  INITRD /initrd.gz' \
    '  APPEND console=ttyS0 quiet panic=-1'
}

guest_disk_spec() {
  { echo v1; guest_syslinux_cfg; cat "$GUEST_DIR/kernel.version" "$GUEST_DIR/initrd.spec"; } | sha256sum | cut -c1-16
}

# guest_disk_build: $GUEST_DIR/disk.qcow2, a 32 MiB disk (MBR with syslinux's boot code, one bootable FAT16
# partition at 1 MiB holding vmlinuz, initrd.gz and syslinux), built on image files with sfdisk, mtools and
# syslinux --offset: no loop device, no mount. Boots to the same EDGEPLANE-GUEST-READY as the direct-boot guest.
guest_disk_build() {
  local tmp raw
  tmp=$(mktemp -d)
  raw="$tmp/disk.raw"
  truncate -s 32M "$raw"
  printf 'label: dos\nstart=2048, type=6, bootable\n' | sfdisk -q "$raw" >/dev/null || die "guest: sfdisk failed"
  # 63488 sectors = the partition (32 MiB - 1 MiB); geometry as sfdisk's (64 heads, 32 sectors per track).
  mformat -i "$raw@@1M" -T 63488 -h 64 -s 32 -H 2048 -v EDGEGUEST :: || die "guest: mformat failed"
  guest_syslinux_cfg >"$tmp/syslinux.cfg"
  mcopy -i "$raw@@1M" "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.gz" "$tmp/syslinux.cfg" :: ||
    die "guest: mcopy failed"
  syslinux --offset 1048576 --install "$raw" || die "guest: syslinux --install failed"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none ||
    die "guest: writing the MBR boot code failed"
  qemu-img convert -c -O qcow2 "$raw" "$GUEST_DIR/disk.qcow2.tmp" || die "guest: qemu-img convert failed"
  mv "$GUEST_DIR/disk.qcow2.tmp" "$GUEST_DIR/disk.qcow2"
  guest_disk_spec >"$GUEST_DIR/disk.spec"
  rm -rf "$tmp"
}

# guest_probe ACCEL: boots the guest once with ACCEL; true if the ready marker appears within 20 s.
guest_probe() {
  local out
  out=$(timeout -k 5 20 qemu-system-x86_64 -accel "$1" -m 256 -nodefaults -nographic -serial stdio -no-reboot \
    -net none -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.gz" \
    -append 'console=ttyS0 quiet panic=-1 edgeplane.probe' </dev/null 2>&1 || true)
  grep -q EDGEPLANE-GUEST-READY <<<"$out"
}

step_guest() {
  have qemu-system-x86_64 || die "qemu-system-x86_64 not found (package qemu-system-x86)"
  if [ -s "$GUEST_DIR/vmlinuz" ] && [ -s "$GUEST_DIR/initrd.gz" ] &&
    [ "$(cat "$GUEST_DIR/initrd.spec" 2>/dev/null)" = "$(guest_spec)" ]; then
    log "guest: present ($(cat "$GUEST_DIR/kernel.version" 2>/dev/null))"
  else
    log "guest: building kernel + initramfs in $GUEST_DIR"
    guest_build
    log "guest: built ($(cat "$GUEST_DIR/kernel.version"))"
  fi
  if [ -s "$GUEST_DIR/disk.qcow2" ] && [ "$(cat "$GUEST_DIR/disk.spec" 2>/dev/null)" = "$(guest_disk_spec)" ]; then
    log "guest: disk image present"
  else
    have syslinux && have mformat && have sfdisk && have qemu-img ||
      die "guest: the disk image needs syslinux, mtools, fdisk and qemu-utils (install.sh packages)"
    log "guest: building the disk image"
    guest_disk_build
    log "guest: disk image built ($GUEST_DIR/disk.qcow2)"
  fi
  local accel
  accel=$(cat "$GUEST_DIR/accel" 2>/dev/null || true)
  if [ "$accel" = kvm ] || [ "$accel" = tcg ]; then
    log "guest: accel $accel (probed earlier)"
    return 0
  fi
  accel=tcg
  if [ -c /dev/kvm ]; then
    log "guest: probing KVM (up to 20 s)"
    if guest_probe kvm; then accel=kvm; else log "guest: KVM did not boot the guest, using TCG"; fi
  else
    log "guest: no /dev/kvm, using TCG"
  fi
  if [ "$accel" = tcg ]; then
    guest_probe tcg || die "guest: the test guest does not boot with TCG either"
  fi
  echo "$accel" >"$GUEST_DIR/accel"
  log "guest: accel $accel"
}

step_guest_paths() {
  step_guest >&2
  echo "kernel=$GUEST_DIR/vmlinuz"
  echo "initrd=$GUEST_DIR/initrd.gz"
  echo "disk=$GUEST_DIR/disk.qcow2"
  echo "accel=$(cat "$GUEST_DIR/accel")"
}

# ---------------------------------------------------------------------------------------------------------
# Node dependencies
# ---------------------------------------------------------------------------------------------------------
step_node() {
  have npm || die "npm not found: install Node.js 20"
  # A git worktree sharing another checkout's node_modules through a symlink: npm ci would empty the target
  # (it removes node_modules' entries through the link) and then replace the link with a directory.
  if [ -L "$REPO_DIR/node_modules" ]; then
    log "node_modules: a symlink ($(readlink "$REPO_DIR/node_modules")), left alone"
    return 0
  fi
  if [ ! -d "$REPO_DIR/node_modules" ] || [ ! -f "$REPO_DIR/node_modules/.package-lock.json" ] ||
    [ "$REPO_DIR/package-lock.json" -nt "$REPO_DIR/node_modules/.package-lock.json" ]; then
    log "node_modules: installing (npm ci)"
    (cd "$REPO_DIR" && npm ci --no-audit --no-fund) || die "npm ci failed"
  else
    log "node_modules: up to date"
  fi
}

# ---------------------------------------------------------------------------------------------------------

# with_lock NAME CMD...: one install step of a kind at a time on this machine (tests may run install.sh
# concurrently with `npm run dev`).
with_lock() {
  local name=$1
  shift
  mkdir -p "$EDGE_CACHE/locks"
  (
    flock -w 3600 9 || die "timed out waiting for the $name lock"
    "$@"
  ) 9>"$EDGE_CACHE/locks/$name.lock"
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root"
  mkdir -p "$EDGE_CACHE"
  if [ $# -eq 0 ]; then
    set -- packages kube-apiserver docker guest node
  fi
  case "$1" in
  image)
    shift
    [ $# -ge 1 ] || die "usage: install.sh image TAG [options]"
    with_lock docker ensure_image "$@"
    return
    ;;
  guest-paths)
    with_lock guest step_guest_paths
    return
    ;;
  esac
  local t0=$SECONDS s
  for s in "$@"; do
    case "$s" in
    packages) with_lock apt step_packages ;;
    kube-apiserver) with_lock kube-apiserver step_kube_apiserver ;;
    docker)
      with_lock docker step_docker_daemon
      with_lock docker ensure_image "$BUSYBOX_IMAGE"
      with_lock docker step_docker_verify
      ;;
    image) with_lock docker step_image ;;
    guest) with_lock guest step_guest ;;
    node) step_node ;;
    *) die "unknown step: $s (steps: packages kube-apiserver docker image guest node)" ;;
    esac
  done
  log "done in $((SECONDS - t0)) s"
}

main "$@"
