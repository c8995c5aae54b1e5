#!/bin/sh
# The scrape benchmark (benches/scrape.rs) on a real cgroup v2 kernel: builds it and the
# exporter statically, boots the test VM (run-vm.sh, beside this file) with 2 CPUs, runs
# the benchmark there and prints its table. Under software emulation every figure is
# slower than on hardware; the ratios to the floor, measured in the same run, are what
# compare.
#
# Usage: bench.sh [SIZES]    (default 100,1000; e.g. 100,1000,10000)
#        STEVEDORE_BENCH_ARGS is passed on (extra exporter flags, space-separated).
set -eu
SIZES=${1:-100,1000}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
STATIC=$TARGET/static
TRIPLE=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static"

cd "$REPO"
cargo build --release --bin stevedore --target $TRIPLE --target-dir "$STATIC"
BENCH=$(cargo bench --no-run --bench scrape --target $TRIPLE --target-dir "$STATIC" \
	--message-format=json 2>/dev/null |
	sed -n 's/.*"executable":"\([^"]*\/scrape-[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$BENCH" ] || { echo "bench.sh: the benchmark did not build" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$BENCH" "$WORK/scrape-bench"
cat >"$WORK/extra.sh" <<SCRIPT
ip link set lo up || err "loopback"
echo "=== BENCH BEGIN ==="
STEVEDORE_BINARY=/bin/stevedore STEVEDORE_BENCH_SIZES=$SIZES STEVEDORE_BENCH_ARGS="${STEVEDORE_BENCH_ARGS:-}" /bin/scrape-bench || err "scrape-bench exit \$?"
echo "=== BENCH END ==="
SCRIPT

"$HERE/run-vm.sh" --cache "$TARGET/v2-kernel-cache" --out "$WORK/serial.log" \
	--stevedore "$STATIC/$TRIPLE/release/stevedore" --extra-binary "$WORK/scrape-bench" \
	--extra-script "$WORK/extra.sh" --smp 2 --memory 2G --timeout 3600 || {
	cat "$WORK/serial.log" >&2
	exit 1
}
sed -n '/=== BENCH BEGIN/,/=== BENCH END/p' "$WORK/serial.log"
