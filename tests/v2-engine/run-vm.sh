#!/bin/sh
# Boots the cgroup v2 engine test VM (an image made by build-image.sh, beside this file) under
# qemu's software emulation, with a host directory shared into the guest at /mnt/host. The
# guest's stevedore-test.service runs /mnt/host/guest.sh once the engine is up and powers the
# VM off when it ends; the evidence it gathers is left in the shared directory.
#
# KVM is not used on purpose: the /dev/kvm found on these machines hangs a stock kernel.
# The image's disk is never written: qemu keeps each run's writes in a temporary overlay, so
# every run boots the same pristine system.
#
# Usage:
#   run-vm.sh --image DIR --share DIR --out FILE [--timeout SECS] [--memory SIZE] [--smp N]
#
#   --image DIR    the image directory build-image.sh printed
#   --share DIR    the directory the guest sees at /mnt/host (guest.sh and what it needs)
#   --out FILE     the serial console log, ANSI escapes and CRs removed
#   --timeout SECS hard limit for the VM (default 420, also $V2_ENGINE_VM_TIMEOUT): a run
#                  alone takes under 3 minutes; beside the rest of the suite, longer
#
# Exit status: 0 the VM powered off by itself; 124 it hit the timeout; anything else a setup
# or qemu failure. Whether the test inside went well is for the caller to read in the share.
set -eu

die() { echo "run-vm: $*" >&2; exit 1; }
log() { echo "run-vm: $*" >&2; }
usage() { sed -n '/^# Usage:/,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

IMAGE=
SHARE=
OUT=
TIMEOUT=${V2_ENGINE_VM_TIMEOUT:-420}
# One vCPU: with two, multi-threaded emulation now and then lets one vCPU run code the
# other is live-patching (the kernel's int3-based text_poke), and the guest kernel dies of
# an "Oops: int3" during boot. Memory for the engine, a few containers and the 32 MiB ones.
MEMORY=1536M
SMP=1
while [ $# -gt 0 ]; do
	case $1 in
	--image) IMAGE=${2:?}; shift 2 ;;
	--share) SHARE=${2:?}; shift 2 ;;
	--out) OUT=${2:?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--memory) MEMORY=${2:?}; shift 2 ;;
	--smp) SMP=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "run-vm: unknown argument: $1" >&2; usage ;;
	esac
done
[ -n "$IMAGE" ] && [ -n "$SHARE" ] && [ -n "$OUT" ] || usage
[ -f "$IMAGE/.complete" ] || die "$IMAGE is not a complete image (build-image.sh makes one)"
[ -d "$SHARE" ] || die "no such directory: $SHARE"
QEMU=${QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install --no-install-recommends qemu-system-x86)"

KERNEL=$IMAGE/vmlinuz
[ ! -f "$IMAGE/vmlinux" ] || KERNEL=$IMAGE/vmlinux
WORK=$(mktemp -d "${TMPDIR:-/tmp}/v2-engine-vm.XXXXXX")
cleanup() {
	# timeout passes the TERM on to qemu; this is for a signal to this script itself.
	[ -z "${QPID:-}" ] || kill "$QPID" 2>/dev/null || :
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# -nodefaults: no NIC (the guest needs no network), no VGA. Serial to a file: nothing reads
# the caller's terminal. snapshot=on: the run's writes go to a temporary file, never to the
# cached image. panic=-1 + -no-reboot: a kernel panic ends qemu instead of looping. In the
# background so that a signal to this script is acted on at once.
log "booting $(basename "$IMAGE") (timeout ${TIMEOUT}s)"
start=$(date +%s)
set +e
timeout -k 10 "$TIMEOUT" "$QEMU" \
	-nodefaults -no-user-config -accel tcg -machine pc -cpu max \
	-m "$MEMORY" -smp "$SMP" \
	-kernel "$KERNEL" -initrd "$IMAGE/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 panic=-1 systemd.show_status=error" \
	-drive "file=$IMAGE/disk.img,format=raw,if=virtio,snapshot=on" \
	-virtfs "local,path=$SHARE,mount_tag=host,security_model=none,id=host" \
	-display none -monitor none -serial "file:$WORK/serial.raw" \
	-no-reboot </dev/null >"$WORK/qemu.log" 2>&1 &
QPID=$!
wait $QPID
rc=$?
QPID=
set -e
end=$(date +%s)

mkdir -p "$(dirname "$OUT")"
"$(dirname "$0")/../v2-kernel/clean-serial.sh" "$WORK/serial.raw" "$OUT"

if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	log "the VM was still running after ${TIMEOUT}s; serial log in $OUT"
	exit 124
fi
if [ $rc -ne 0 ]; then
	cat "$WORK/qemu.log" >&2
	die "qemu exited with $rc"
fi
log "the VM powered off after $((end - start))s"
