#!/bin/sh
# Boot a stock Debian kernel under qemu (software emulation) with a pure
# cgroup v2 hierarchy, run the scenario in init.sh (next to this file) and
# leave the serial console log in --out.
#
# The host's own cgroup setup (v1/hybrid, no delegation) cannot give the v2
# controllers to a test, hence a whole VM. KVM is not used on purpose: the
# /dev/kvm found on these machines hangs a stock kernel, and TCG is fast
# enough (boot ~2 s, whole run ~15 s).
#
# Usage:
#   run-vm.sh --cache DIR --out FILE [--stevedore BIN] [--stevedore-args ARGS]
#             [--timeout SECS] [--memory SIZE] [--smp N] [--kernel-deb FILE]
#             [--extra-script FILE] [--extra-binary FILE] [--keep-work]
#
#   --cache DIR        kernel cache (e.g. target/v2-kernel-cache); the kernel
#                      package is downloaded and unpacked there once
#   --out FILE         serial log, ANSI escapes and CRs removed
#   --stevedore BIN    put BIN at /bin/stevedore in the VM (static is best;
#                      the shared libraries of a dynamic one are copied too)
#   --stevedore-args   exporter arguments, in shell syntax as parsed by the
#                      guest shell (also $STEVEDORE_ARGS)
#   --timeout SECS     hard limit for the VM (default 120, also $V2_VM_TIMEOUT)
#   --kernel-deb FILE  use this linux-image .deb instead of downloading one
#   --extra-script F   sourced by the guest init after the workloads, before
#                      the dumps and the exporter run (can use its helpers)
#   --extra-binary F   put F at /bin/<its name> in the VM (repeatable)
#   --keep-work        keep the work directory (initramfs tree, raw log)
#
# Exit status: 0 the scenario ran to "=== SCENARIO COMPLETE"; 124 the VM hit
# the timeout; 3 the VM stopped without completing (panic, crash); 2 usage;
# anything else a setup failure. A 0 only means the scenario finished: the
# CHECK/ERROR marker lines in the log say whether it went as expected.
set -eu

die() { echo "run-vm: $*" >&2; exit 1; }
log() { echo "run-vm: $*" >&2; }
usage() { sed -n '/^# Usage:/,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=
OUT=
STEVEDORE=
STEVEDORE_ARGS=${STEVEDORE_ARGS:-"scrape --path.cgroupfs=/sys/fs/cgroup --path.procfs=/proc --docker.host=unix:///nonexistent.sock --cgroup.raw='/docker/*' --cgroup.raw='/system.slice/*.scope'"}
TIMEOUT=${V2_VM_TIMEOUT:-120}
MEMORY=512M
SMP=1
KERNEL_DEB=
EXTRA=
EXTRA_BINARIES=
KEEP=no
# Order matters: each module needs the ones before it.
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"

while [ $# -gt 0 ]; do
	case $1 in
	--cache) CACHE=${2:?}; shift 2 ;;
	--out) OUT=${2:?}; shift 2 ;;
	--stevedore) STEVEDORE=${2:?}; shift 2 ;;
	--stevedore-args) STEVEDORE_ARGS=${2?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--memory) MEMORY=${2:?}; shift 2 ;;
	--smp) SMP=${2:?}; shift 2 ;;
	--kernel-deb) KERNEL_DEB=${2:?}; shift 2 ;;
	--extra-script) EXTRA=${2:?}; shift 2 ;;
	--extra-binary) EXTRA_BINARIES="$EXTRA_BINARIES ${2:?}"; shift 2 ;;
	--keep-work) KEEP=yes; shift ;;
	-h | --help) usage ;;
	*) echo "run-vm: unknown argument: $1" >&2; usage ;;
	esac
done
[ -n "$CACHE" ] && [ -n "$OUT" ] || usage
[ -z "$STEVEDORE" ] || [ -f "$STEVEDORE" ] || die "no such file: $STEVEDORE"
[ -z "$EXTRA" ] || [ -f "$EXTRA" ] || die "no such file: $EXTRA"
[ -z "$KERNEL_DEB" ] || [ -f "$KERNEL_DEB" ] || die "no such file: $KERNEL_DEB"

QEMU=${QEMU:-qemu-system-x86_64}
BUSYBOX=${BUSYBOX:-/bin/busybox}
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install --no-install-recommends qemu-system-x86)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
command -v dpkg >/dev/null || die "dpkg not found"
if command -v cpio >/dev/null; then CPIO="cpio --quiet"; else CPIO="$BUSYBOX cpio"; fi

mkdir -p "$CACHE" "$(dirname "$OUT")"
CACHE=$(cd "$CACHE" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/v2-kernel.XXXXXX")
cleanup() {
	# Partial downloads/unpacks of this run: never leave a half tree that a
	# later run could mistake for a complete one (those are only ever
	# renamed into place once complete, so this is tidiness, not safety).
	[ -z "${DL_TMP:-}" ] || rm -rf "$DL_TMP"
	[ -z "${UNPACK_TMP:-}" ] || rm -rf "$UNPACK_TMP"
	# timeout passes the TERM on to qemu: a killed run leaves no VM behind.
	[ -z "${QPID:-}" ] || kill "$QPID" 2>/dev/null || :
	if [ $KEEP = yes ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------------------
# Kernel: $CACHE/<package>/ holds the unpacked package; a tree is only ever
# renamed there once complete (".complete" inside), so an interrupted run
# leaves at worst a stale .dl.*/.unpack.* directory, removed by the next run.
# ---------------------------------------------------------------------------
find_cached_kernel() {
	for d in "$CACHE"/linux-image-*; do
		[ -f "$d/.complete" ] && echo "$d"
	done | sort -V | tail -n 1
}

fetch_kernel() {
	if [ -n "$KERNEL_DEB" ]; then
		pkg=$(dpkg-deb -f "$KERNEL_DEB" Package) || die "not a .deb: $KERNEL_DEB"
		KDIR=$CACHE/$pkg
		[ -f "$KDIR/.complete" ] && return 0
		deb=$KERNEL_DEB
	else
		# Any complete cached kernel wins: a Debian point release bumping the
		# ABI number must not force a download (or fail offline) once one
		# kernel is cached. Remove the cache directory to move on.
		KDIR=$(find_cached_kernel)
		[ -n "$KDIR" ] && return 0
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
		[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (apt-get update? or pass --kernel-deb)"
		KDIR=$CACHE/$pkg
		deb=$CACHE/$pkg.deb
		if [ ! -f "$deb" ]; then
			log "downloading $pkg"
			DL_TMP=$(mktemp -d "$CACHE/.dl.XXXXXX")
			# As root apt drops to _apt, which cannot write into a private
			# temp directory; it would fall back with a warning anyway.
			sandbox=
			[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"
			(cd "$DL_TMP" && apt-get download -q $sandbox "$pkg" >&2) || die "apt-get download $pkg failed"
			set -- "$DL_TMP"/*.deb
			[ -f "$1" ] || die "apt-get download left no .deb"
			mv "$1" "$deb"
			rm -rf "$DL_TMP"; DL_TMP=
		fi
	fi
	log "unpacking $(basename "$deb")"
	UNPACK_TMP=$(mktemp -d "$CACHE/.unpack.XXXXXX")
	if ! dpkg -x "$deb" "$UNPACK_TMP"; then
		# A .deb we downloaded that does not unpack is corrupt: drop it so
		# the next run fetches it again instead of failing forever.
		[ "$deb" = "$KERNEL_DEB" ] || rm -f "$deb"
		die "dpkg -x $deb failed"
	fi
	set -- "$UNPACK_TMP"/boot/vmlinuz-*
	[ -f "$1" ] || die "no boot/vmlinuz-* in $deb"
	touch "$UNPACK_TMP/.complete"
	rm -rf "$KDIR"
	mv "$UNPACK_TMP" "$KDIR"
	UNPACK_TMP=
	# The unpacked tree is the cache; the 70 MB archive is no longer needed.
	[ "$deb" = "$KERNEL_DEB" ] || rm -f "$deb"
}

# Under emulation the bzImage stub spends ~4 s xz-decompressing the kernel
# on every boot. A kernel built with CONFIG_PVH can instead be handed to qemu
# as the plain ELF vmlinux (PVH entry point), so decompress it once into the
# cache. Any failure just means booting the bzImage.
extract_vmlinux() {
	[ ! -f "$KDIR/vmlinux" ] || return 0
	grep -q '^CONFIG_PVH=y' "$KDIR"/boot/config-* 2>/dev/null || return 0
	if ! command -v xz >/dev/null; then
		log "xz not found: booting the compressed kernel (~4 s slower)"
		return 0
	fi
	set -- "$KDIR"/boot/vmlinuz-*
	# The xz stream starts after the setup code and is followed by other
	# data: --single-stream stops at its end, so a non-zero status really
	# means a bad stream (wrong candidate offset, or truncated).
	for off in $(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$1" | cut -d: -f1 | head -n 5); do
		if tail -c +$((off + 1)) "$1" | xz -dc --single-stream >"$KDIR/.vmlinux.tmp" 2>/dev/null &&
			[ "$(head -c 4 "$KDIR/.vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
			mv "$KDIR/.vmlinux.tmp" "$KDIR/vmlinux"
			return 0
		fi
	done
	rm -f "$KDIR/.vmlinux.tmp"
	log "no vmlinux found in $1: booting the compressed kernel (~4 s slower)"
}

# Tests run in parallel threads: serialise the fetch so two VMs never
# download or unpack the same kernel at once.
if command -v flock >/dev/null; then
	exec 9>>"$CACHE/.lock"
	flock 9
	rm -rf "$CACHE"/.dl.* "$CACHE"/.unpack.*
	fetch_kernel
	extract_vmlinux
	exec 9>&-
else
	fetch_kernel
	extract_vmlinux
fi

set -- "$KDIR"/boot/vmlinuz-*
VMLINUZ=$1
KVER=${VMLINUZ##*/vmlinuz-}
BOOT_KERNEL=$VMLINUZ
[ ! -f "$KDIR/vmlinux" ] || BOOT_KERNEL=$KDIR/vmlinux
MODDIR=$KDIR/lib/modules/$KVER
[ -d "$MODDIR" ] || die "no $MODDIR"
log "kernel $KVER from $BOOT_KERNEL"

# ---------------------------------------------------------------------------
# initramfs
# ---------------------------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp" "$ROOT/mnt" "$ROOT/etc" "$ROOT/lib/modules"

# Copy a program plus, if it is dynamically linked, its loader and libraries
# at the same paths, so a non-static build still runs (with a warning).
add_program() {
	cp "$1" "$ROOT$2"
	chmod 755 "$ROOT$2"
	libs=$(ldd "$1" 2>/dev/null | sed -n 's/.*[[:space:]]\(\/[^ ]*\) (0x[0-9a-f]*)$/\1/p') || true
	[ -n "$libs" ] || return 0
	log "warning: $1 is dynamically linked, copying its libraries"
	for lib in $libs; do
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib"
	done
}

add_program "$BUSYBOX" /bin/busybox
cp "$HERE/init.sh" "$ROOT/init"
chmod 755 "$ROOT/init"

for m in $MODULES; do
	f=$(find "$MODDIR/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n 1)
	[ -n "$f" ] || die "module $m not found under $MODDIR"
	# busybox insmod takes plain ELF only; newer Debian kernels compress.
	case $f in
	*.xz) xz -dc "$f" >"$ROOT/lib/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$ROOT/lib/modules/$m.ko" ;;
	*) cp "$f" "$ROOT/lib/modules/$m.ko" ;;
	esac
done
echo "$MODULES" >"$ROOT/etc/modules"

[ -z "$STEVEDORE" ] || add_program "$STEVEDORE" /bin/stevedore
for binary in $EXTRA_BINARIES; do
	[ -f "$binary" ] || die "no such file: $binary"
	add_program "$binary" "/bin/$(basename "$binary")"
done
printf '%s\n' "$STEVEDORE_ARGS" >"$ROOT/etc/stevedore.args"
[ -z "$EXTRA" ] || cp "$EXTRA" "$ROOT/etc/scenario-extra.sh"

# Left uncompressed: measured no slower to boot than gzip (the guest
# decompressor is emulated too), and one tool fewer on the host.
(cd "$ROOT" && find . | $CPIO -o -H newc) >"$WORK/initramfs.cpio"

# Sparse scratch disk: the disk writer writes to it raw, no filesystem.
truncate -s 64M "$WORK/disk.img"

# ---------------------------------------------------------------------------
# Boot
# ---------------------------------------------------------------------------
# -nodefaults: no NIC (needs option ROMs, slows the firmware), no VGA.
# Serial goes to a file, not stdio: nothing reads the caller's terminal.
# panic=-1 + -no-reboot: a kernel panic exits qemu instead of looping.
# In the background so that a signal to this script is acted on at once
# (the shell defers traps while a foreground child runs).
log "booting (timeout ${TIMEOUT}s)"
start=$(date +%s)
set +e
timeout -k 10 "$TIMEOUT" "$QEMU" \
	-nodefaults -no-user-config -accel tcg -machine pc \
	-m "$MEMORY" -smp "$SMP" \
	-kernel "$BOOT_KERNEL" -initrd "$WORK/initramfs.cpio" \
	-append "console=ttyS0 loglevel=0 quiet panic=-1" \
	-drive "file=$WORK/disk.img,format=raw,if=virtio" \
	-display none -monitor none -serial "file:$WORK/serial.raw" \
	-no-reboot </dev/null >"$WORK/qemu.log" 2>&1 &
QPID=$!
wait $QPID
rc=$?
QPID=
set -e
end=$(date +%s)

"$HERE/clean-serial.sh" "$WORK/serial.raw" "$OUT"

if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	log "qemu timed out after ${TIMEOUT}s; log in $OUT"
	exit 124
fi
if [ $rc -ne 0 ]; then
	cat "$WORK/qemu.log" >&2
	die "qemu exited with $rc"
fi
if ! grep -q '^=== SCENARIO COMPLETE' "$OUT"; then
	log "VM stopped before the scenario completed after $((end - start))s; log in $OUT"
	exit 3
fi
log "scenario complete in $((end - start))s; $(grep -c '^=== CHECK .* FAIL' "$OUT" || :) failed checks, $(sed -n 's/^=== ERRORS \([0-9]*\) ===$/\1/p' "$OUT") errors"
exit 0
