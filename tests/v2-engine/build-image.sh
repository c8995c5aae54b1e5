#!/bin/sh
# Builds the cgroup v2 engine test VM from Debian's packages only: Debian 13 "trixie" with its
# kernel, systemd as init (so the unified cgroup v2 hierarchy and Docker's systemd cgroup
# driver, as on most Docker hosts today) and its docker.io, started by systemd. The image is
# built once and cached outside the clone, in a directory named by a hash of this file (which
# holds the package list and every setting), so an edit here builds a new one and an unchanged
# script boots the cached one in seconds.
#
# Usage:
#   build-image.sh [--cache-root DIR] [--mirror URL]
#
#   --cache-root DIR  where images are kept (default $STEVEDORE_TEST_CACHE, else
#                     /var/cache/stevedore-test)
#   --mirror URL      the Debian mirror (default $STEVEDORE_DEBIAN_MIRROR, else
#                     http://deb.debian.org/debian)
#
# Prints the image directory on stdout: disk.img (raw ext4 root filesystem, booted read-only
# with the writes of each run kept apart by qemu), vmlinuz (or vmlinux, the decompressed
# kernel), initrd.img, packages.txt (every installed package and its version), build.txt (how
# long the build took). Exit status non-zero with a reason on stderr when no image can be had
# (no Debian mirror answers, mmdebstrap missing).
set -eu

SUITE=trixie
# What the guest needs, nothing recommended: the kernel and an initramfs that loads the
# virtio drivers; systemd as init with udev and D-Bus (runc's systemd driver talks to
# systemd); the engine and its command line; busybox for the test image built inside; curl to read the engine's
# own API as raw JSON.
PACKAGES="linux-image-amd64 initramfs-tools systemd systemd-sysv udev dbus kmod docker.io docker-cli busybox-static curl"
# The guest's root filesystem, sparse: room for the engine's layers and the containers' writes.
DISK_SIZE=3G

die() { echo "build-image: $*" >&2; exit 1; }
log() { echo "build-image: $*" >&2; }
usage() { sed -n '/^# Usage:/,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")

# ---------------------------------------------------------------------------
# Inside mmdebstrap's customize hook ($1 is the new root, mounted and ready for chroot): the
# settings that make it a test VM. Part of this file, so part of the cache key.
# ---------------------------------------------------------------------------
if [ "${1:-}" = --customize ]; then
	R=${2:?}
	# The host's directory for this run on a 9p share. The root (/dev/vda, mounted read-write
	# by the initramfs from the kernel's command line) is left out: no fsck, no remount, no
	# wait for udev to announce the disk. Each run boots the same pristine image (qemu keeps
	# its writes apart).
	cat >"$R/etc/fstab" <<-'EOF'
	host /mnt/host 9p trans=virtio,version=9p2000.L,msize=262144,nofail 0 0
	EOF
	mkdir -p "$R/mnt/host"
	echo stevedore-vm >"$R/etc/hostname"
	# A machine id makes every boot a later boot, not a first one (which would apply every
	# unit preset again).
	echo 5eedc0ffee5eedc0ffee5eedc0ffee00 >"$R/etc/machine-id"
	printf '127.0.0.1 localhost\n127.0.1.1 stevedore-vm\n' >"$R/etc/hosts"
	printf '9p\n9pnet_virtio\n' >"$R/etc/modules-load.d/stevedore-vm.conf"

	# A small initramfs: the few modules that mount the root, not every driver Debian has
	# (a large one costs seconds to unpack under emulation).
	printf 'MODULES=list\n' >"$R/etc/initramfs-tools/conf.d/stevedore-vm"
	printf 'virtio_pci\nvirtio_blk\next4\n' >"$R/etc/initramfs-tools/modules"
	chroot "$R" update-initramfs -u -k all >/dev/null

	# containerd without its Kubernetes (CRI) plugin, as Docker's own packages ship it: the
	# engine does not use it, and it is most of containerd's start-up.
	printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$R/etc/containerd/config.toml"
	# No default bridge and no firewall rules: the test's containers have no network, and
	# setting up the bridge's rules takes the engine ten seconds at start under emulation.
	mkdir -p "$R/etc/docker"
	printf '{"bridge": "none", "iptables": false}\n' >"$R/etc/docker/daemon.json"

	# The test: the script the host puts on the share, after the engine is up. However it
	# ends, the VM powers off at once, so qemu returns to the host: its evidence is already
	# on the host (9p writes are synchronous), and a clean stop would wait ten seconds for
	# each container that ignores SIGTERM.
	cat >"$R/etc/systemd/system/stevedore-test.service" <<-'EOF'
	[Unit]
	Description=stevedore's engine test (the script on the host's share)
	Requires=docker.service
	After=docker.service
	RequiresMountsFor=/mnt/host
	SuccessAction=poweroff-immediate
	FailureAction=poweroff-immediate

	[Service]
	Type=oneshot
	ExecStart=/bin/sh /mnt/host/guest.sh
	StandardOutput=journal+console
	StandardError=journal+console
	TimeoutStartSec=infinity

	[Install]
	WantedBy=multi-user.target
	EOF
	chroot "$R" systemctl enable stevedore-test.service >/dev/null 2>&1
	# Nothing that would compete for the emulated CPU or write to the console: timers for
	# a long-lived machine, the login prompts, modules for hardware the VM lacks (each
	# modprobe takes seconds under emulation), and the caches a first boot after a package
	# change rebuilds (the image is never upgraded in place).
	for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
		e2scrub_reap.service fstrim.timer serial-getty@ttyS0.service getty@tty1.service \
		systemd-journal-flush.service modprobe@drm.service modprobe@efi_pstore.service \
		modprobe@fuse.service modprobe@configfs.service ldconfig.service \
		systemd-hwdb-update.service systemd-journal-catalog-update.service \
		systemd-update-done.service; do
		ln -sf /dev/null "$R/etc/systemd/system/$unit"
	done
	# The journal in memory only: nothing of it is read after a run.
	mkdir -p "$R/etc/systemd/journald.conf.d"
	printf '[Journal]\nStorage=volatile\n' >"$R/etc/systemd/journald.conf.d/stevedore-vm.conf"
	# Listed for the report, then the package lists and caches that only take room.
	chroot "$R" dpkg-query -W -f '${Package} ${Version}\n' >"$R/root/packages.txt"
	rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb
	exit 0
fi

CACHE_ROOT=${STEVEDORE_TEST_CACHE:-/var/cache/stevedore-test}
MIRROR=${STEVEDORE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
while [ $# -gt 0 ]; do
	case $1 in
	--cache-root) CACHE_ROOT=${2:?}; shift 2 ;;
	--mirror) MIRROR=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "build-image: unknown argument: $1" >&2; usage ;;
	esac
done

# The key is this file alone: the mirror is where packages come from, not what they are.
KEY=$(sha256sum "$SELF" | cut -c1-16)
OUT=$CACHE_ROOT/v2-engine-$KEY
if [ -f "$OUT/.complete" ]; then
	echo "$OUT"
	exit 0
fi

command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
command -v mke2fs >/dev/null || die "mke2fs not found (apt-get install e2fsprogs)"
[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap's root mode, device nodes)"
mkdir -p "$CACHE_ROOT"

# Tests run in parallel: one build at a time, and whoever waited finds it done.
exec 9>>"$CACHE_ROOT/.v2-engine.lock"
flock 9
if [ -f "$OUT/.complete" ]; then
	echo "$OUT"
	exit 0
fi
# Leftovers of an interrupted build; a tree only ever becomes $OUT once complete.
rm -rf "$CACHE_ROOT"/.v2-engine-build.*
WORK=$(mktemp -d "$CACHE_ROOT/.v2-engine-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM HUP

start=$(date +%s)
log "building the $SUITE image from $MIRROR into $OUT (a few minutes, once)"
# The mirror is named so that nothing else (no security suite, no host apt sources) is used.
if ! mmdebstrap --mode=root --variant=apt --format=directory \
	--include="$(echo "$PACKAGES" | tr ' ' ',')" \
	--customize-hook="sh '$SELF' --customize \"\$1\"" \
	"$SUITE" "$WORK/root" "deb $MIRROR $SUITE main" >"$WORK/mmdebstrap.log" 2>&1; then
	tail -n 30 "$WORK/mmdebstrap.log" >&2
	if grep -qiE 'could not resolve|failed to fetch|unable to connect|connection (refused|timed out)|temporary failure|release file' "$WORK/mmdebstrap.log"; then
		die "no Debian mirror answered at $MIRROR for $SUITE: the image cannot be built"
	fi
	die "mmdebstrap failed building the $SUITE image (log above)"
fi

mkdir -p "$WORK/out"
set -- "$WORK"/root/boot/vmlinuz-*
[ -f "$1" ] || die "no kernel in the image"
KVER=${1##*/vmlinuz-}
cp "$1" "$WORK/out/vmlinuz"
cp "$WORK/root/boot/initrd.img-$KVER" "$WORK/out/initrd.img" || die "no initrd for $KVER"
mv "$WORK/root/root/packages.txt" "$WORK/out/packages.txt"

# Under emulation the bzImage stub spends seconds decompressing the kernel on every boot. A
# kernel built with CONFIG_PVH can be handed to qemu as its plain ELF vmlinux instead: find
# the compressed stream (xz or zstd, whichever Debian used) and unpack it once. The stream is
# followed by other data, so the decompressor may complain at its end: the result counts when
# it is an ELF file whose section headers (at its end) read back. Any failure just means
# booting the bzImage.
if grep -q '^CONFIG_PVH=y' "$WORK/root/boot/config-$KVER" && command -v readelf >/dev/null; then
	for format in xz zstd; do
		command -v $format >/dev/null || continue
		case $format in
		xz) magic=$(printf '\3757zXZ') ;;
		zstd) magic=$(printf '\050\265\057\375') ;;
		esac
		for off in $(LC_ALL=C grep -abo "$magic" "$WORK/out/vmlinuz" | cut -d: -f1 | head -n 5); do
			tail -c +$((off + 1)) "$WORK/out/vmlinuz" | $format -dc >"$WORK/out/vmlinux" 2>/dev/null || :
			if [ "$(head -c 4 "$WORK/out/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] &&
				readelf -S "$WORK/out/vmlinux" >/dev/null 2>&1; then
				break 2
			fi
			rm -f "$WORK/out/vmlinux"
		done
	done
fi
[ -f "$WORK/out/vmlinux" ] || log "no vmlinux unpacked from the kernel: booting the compressed one (seconds slower)"

# A plain ext4 image filled from the tree: no loop device, no partition table (root=/dev/vda).
mke2fs -q -t ext4 -L stevedore-root -d "$WORK/root" "$WORK/out/disk.img" "$DISK_SIZE" \
	>"$WORK/mke2fs.log" 2>&1 || { cat "$WORK/mke2fs.log" >&2; die "mke2fs failed"; }

end=$(date +%s)
{
	echo "suite $SUITE"
	echo "kernel $KVER"
	echo "docker.io $(sed -n 's/^docker.io //p' "$WORK/out/packages.txt")"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((end - start)) s"
} >"$WORK/out/build.txt"
touch "$WORK/out/.complete"
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
log "image ready in $((end - start)) s: $(cat "$OUT/build.txt" | tr '\n' ';')"
echo "$OUT"
