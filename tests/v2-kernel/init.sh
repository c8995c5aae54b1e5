#!/bin/busybox sh
# /init of the test VM built by run-vm.sh.
#
# It builds a pure cgroup v2 hierarchy shaped like the ones Docker creates
# (cgroupfs driver under /docker, systemd driver under /system.slice), puts a
# known workload in each container cgroup, dumps the raw cgroup files, runs
# the exporter against the same tree and powers the VM off.
#
# The serial console is the only channel back to the host (qemu exits 0
# whatever happens in here), so every outcome is printed as a marker line
# starting with "=== ":
#   === INFO ... ===                    facts about the run (devices, timings)
#   === CGROUP <role> <path> ===        the container cgroups and their roles
#   === CHECK <name> PASS|FAIL ... ===  self-checks on what the kernel enforced
#   === ERROR ... ===                   anything that went wrong (never skipped silently)
#   === DUMP BEGIN <label> uptime=<s> === / === DUMP END <label> uptime=<s> ===
#   === FILE <path> === ... === END FILE ===
#   === STEVEDORE BEGIN/END ===, === STEVEDORE STDERR BEGIN/END ===,
#   === STEVEDORE EXIT <code> ===  (or === STEVEDORE SKIPPED ... ===)
#   === ERRORS <count> ===, === SCENARIO COMPLETE uptime=<s> ===
# Counters only grow, so the raw files are dumped both before ("before") and
# after ("after") the exporter runs: a scraped counter must lie between them.

# Without a /dev/console node in the archive the kernel starts us with no
# stdio at all; devtmpfs provides one without needing mknod (and root) on the
# host that packs the archive.
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

/bin/busybox --install -s /bin
export PATH=/bin
# No -e: a failing step must be reported and the rest still run, since a
# partial report is worth more than a VM that stops at the first surprise.
set -u

ERRORS=0
err() { ERRORS=$((ERRORS + 1)); echo "=== ERROR $* ==="; }
info() { echo "=== INFO $* ==="; }
check() { # name, 0|1 (shell truth of the condition), detail
	if [ "$2" -eq 0 ]; then echo "=== CHECK $1 PASS $3 ==="; else echo "=== CHECK $1 FAIL $3 ==="; ERRORS=$((ERRORS + 1)); fi
}
now() { read -r up _ </proc/uptime; echo "$up"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Write a cgroup knob and report the kernel's refusal (EINVAL, EBUSY...)
# instead of letting a missing limit go unnoticed.
wr() {
	if ! echo "$2" >"$1" 2>/tmp/wr.err; then
		err "write '$2' > $1 failed: $(cat /tmp/wr.err)"
		return 1
	fi
}

# Key lookup in flat-keyed files (cpu.stat, memory.events, memory.stat).
key() { awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print -1 }' "$1" 2>/dev/null || echo -1; }

# Moving the (sub)shell itself before exec means the workload never runs
# outside its cgroup, not even for its first instructions. "0" is the
# kernel's spelling of "the writing process" in cgroup.procs. Workloads must
# not inherit init's OOM immunity: with every task at -1000 the memcg OOM
# killer finds no victim and the allocating task loops in reclaim forever.
enter() { echo 0 >/proc/self/oom_score_adj && echo 0 >"$1/cgroup.procs"; }
# spawn_in returns only once the child is in the cgroup, so a caller reading
# pids.current or timing the workload right away sees it there.
spawn_in() {
	cg=$1; shift
	( enter "$cg" || exit 126; exec "$@" ) &
	n=0
	until grep -qx "$!" "$cg/cgroup.procs"; do
		n=$((n + 1))
		[ $n -lt 300 ] || { err "pid $! never joined $cg"; return 1; }
		sleep 0.01
	done
}
run_in() { cg=$1; shift; ( enter "$cg" || exit 126; exec "$@" ); }

# One awk for many files: a fork per file costs ~10 ms under emulation and a
# dump is hundreds of files. getline (not the main loop) so that empty files
# still get their pair of markers. Exit status = number of unreadable files.
dump_files() {
	[ $# -gt 0 ] || return 0
	awk 'BEGIN {
		for (i = 1; i < ARGC; i++) {
			f = ARGV[i]; body = ""; n = 0
			while ((r = (getline line < f)) > 0) { body = body line "\n"; n++ }
			close(f)
			if (r < 0) { print "=== ERROR read " f " ==="; bad++; continue }
			print "=== FILE " f " ==="
			printf "%s", body
			print "=== END FILE ==="
		}
		exit bad
	}' "$@"
	bad=$?
	[ $bad -eq 0 ] || ERRORS=$((ERRORS + bad))
}

# Every readable file of a cgroup directory: the parser outside decides what
# is relevant, so a new exporter metric never needs a harness change. Root
# passes test -r even on write-only knobs (cgroup.kill, memory.reclaim): the
# mode bits tell the truth.
dump_cgroup() {
	dump_files $(stat -c '%A %n' "$1"/* | awk '$1 ~ /^-r/ { print $2 }')
}

mount -t proc proc /proc || err "mount proc"
mount -t sysfs sysfs /sys || err "mount sysfs"
mkdir -p /tmp /mnt
echo "=== BOOT uptime=$(now) ==="
info "kernel $(uname -r)"
info "cmdline $(cat /proc/cmdline)"
info "cpus $(nproc) $(grep MemTotal /proc/meminfo | tr -s ' ')"
# A global OOM must never take init (and with it the whole report) down.
echo -1000 >/proc/1/oom_score_adj

# --- virtio disk --------------------------------------------------------
for m in $(cat /etc/modules); do
	insmod "/lib/modules/$m.ko" || err "insmod $m"
done
# virtio_blk probes asynchronously: wait for the node instead of assuming.
i=0
while [ ! -e /sys/block/vda/dev ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
VDA_DEV=
if [ -e /sys/block/vda/dev ]; then
	VDA_DEV=$(cat /sys/block/vda/dev)
	info "vda dev $VDA_DEV size_sectors=$(cat /sys/block/vda/size)"
	[ -b /dev/vda ] || err "/dev/vda missing although /sys/block/vda exists"
else
	err "no /sys/block/vda after insmod"
fi

# --- cgroup v2 hierarchy ------------------------------------------------
CG=/sys/fs/cgroup
mount -t cgroup2 none $CG || err "mount cgroup2"
info "root cgroup.controllers $(cat $CG/cgroup.controllers)"
# One controller per write: a single rejected name fails the whole write,
# and cpuset is the one allowed to be missing.
CTRLS=
for c in cpu cpuset memory io pids; do
	if echo "+$c" >$CG/cgroup.subtree_control 2>/dev/null; then
		CTRLS="$CTRLS $c"
	elif [ "$c" = cpuset ]; then
		info "cpuset controller not enabled"
	else
		err "cannot enable controller $c at the root"
	fi
done
case " $CTRLS " in *" cpuset "*) CPUSET=yes ;; *) CPUSET=no ;; esac
info "cpuset enabled: $CPUSET"
info "root cgroup.subtree_control $(cat $CG/cgroup.subtree_control)"

# Docker's ids are 64 hex digits; fixed ones keep the log diffable.
ID_A=8d58295964ec19c49e037b991a0758a4fe6a4fcc682986dd9588203dc63c4cfa
ID_B=e74979f99330f820995f53568e2b7a654b77977b81ac72a5ee5d64ee74a7e760
ID_C=781314ce27481b878913ef74803435b4d95f2abbd114339c1d8d04b855fcd919
ID_D=b9c32add84cfa6fd84000ca7da77ad146337ace81831b33c1130aa8738376a21
A=$CG/docker/$ID_A
B=$CG/docker/$ID_B
C=$CG/system.slice/docker-$ID_C.scope
D=$CG/docker/$ID_D

for parent in $CG/docker $CG/system.slice; do
	mkdir -p $parent || err "mkdir $parent"
	for c in $CTRLS; do wr $parent/cgroup.subtree_control "+$c"; done
done
for cg in $A $B $C $D; do mkdir -p $cg || err "mkdir $cg"; done
echo "=== CGROUP cpu-burner $A ==="
echo "=== CGROUP memory-holder $B ==="
echo "=== CGROUP disk-writer $C ==="
echo "=== CGROUP oom-victim $D ==="

wr $A/cpu.max "20000 100000"
wr $A/cpu.weight 20
wr $A/pids.max 50
[ $CPUSET = yes ] && wr $A/cpuset.cpus 0

wr $B/memory.max 67108864
wr $B/memory.low 33554432
wr $B/memory.min 16777216
[ -e $B/memory.swap.max ] && wr $B/memory.swap.max 0
wr $B/pids.max 40

[ -n "$VDA_DEV" ] && wr $C/io.max "$VDA_DEV wbps=4194304"
wr $C/pids.max 30

D_LIMITED=yes
wr $D/memory.max 16777216 || D_LIMITED=no
if [ -e $D/memory.swap.max ]; then wr $D/memory.swap.max 0; else info "no memory.swap.max"; fi
wr $D/pids.max 20

for pair in "$A 50" "$B 40" "$C 30" "$D 20"; do
	set -- $pair
	got=$(cat $1/pids.max)
	[ "$got" = "$2" ]; check pids-max $? "$1 pids.max=$got want=$2"
done

# A live process in each container, like a real one has (non-empty
# cgroup.procs, pids.current >= 1).
for cg in $A $B $C $D; do spawn_in $cg sleep 1000000; done
SLEEPER_D=$!

# --- cpu burner: CFS bandwidth must throttle it ---------------------------
t0=$(now)
spawn_in $A sh -c 'while :; do :; done'
BURNER=$!
sleep 2
kill $BURNER
wait $BURNER 2>/dev/null
t1=$(now)
el=$(elapsed "$t0" "$t1")
thr=$(key $A/cpu.stat nr_throttled)
usage=$(key $A/cpu.stat usage_usec)
info "cpu-burner ran ${el}s usage_usec=$usage nr_throttled=$thr throttled_usec=$(key $A/cpu.stat throttled_usec)"
[ "$thr" -gt 0 ]; check cpu-throttled $? "nr_throttled=$thr"
# 20% quota, with slack for the last partial period.
awk -v u="$usage" -v e="$el" 'BEGIN { exit !(u > 0 && u <= e * 1e6 * 0.3) }'
check cpu-quota $? "usage_usec=$usage elapsed=${el}s quota=20%"

# --- memory holder: tmpfs pages are charged to the writer's cgroup ----------
mkdir -p /mnt/holder
mount -t tmpfs -o size=48m tmpfs /mnt/holder || err "mount tmpfs /mnt/holder"
run_in $B dd if=/dev/zero of=/mnt/holder/fill bs=1M count=32 2>/tmp/dd.err || err "memory-holder dd: $(cat /tmp/dd.err)"
cur=$(cat $B/memory.current)
shmem=$(key $B/memory.stat shmem)
inact=$(key $B/memory.stat inactive_file)
info "memory-holder memory.current=$cur shmem=$shmem inactive_file=$inact"
[ "$shmem" -ge 33554432 ]; check memory-shmem $? "shmem=$shmem"
[ $((cur - inact)) -ge 33554432 ]; check memory-working-set $? "current-inactive_file=$((cur - inact))"

# --- disk writer: blk-throttle must hold it at 4 MiB/s ----------------------
if [ -n "$VDA_DEV" ]; then
	t0=$(now)
	run_in $C dd if=/dev/zero of=/dev/vda bs=1M count=8 oflag=direct 2>/tmp/dd.err || err "disk-writer dd: $(cat /tmp/dd.err)"
	t1=$(now)
	el=$(elapsed "$t0" "$t1")
	info "disk-writer wrote 8MiB start=$t0 end=$t1 elapsed=${el}s"
	wbytes=$(awk -v d="$VDA_DEV" '$1 == d { for (i = 2; i <= NF; i++) if ($i ~ /^wbytes=/) { sub(/wbytes=/, "", $i); print $i } }' $C/io.stat)
	info "disk-writer io.stat $(cat $C/io.stat)"
	# 8 MiB at 4 MiB/s is 2 s; blk-throttle grants up to one slice up front.
	awk -v e="$el" 'BEGIN { exit !(e >= 1.5) }'; check io-throttled $? "elapsed=${el}s want>=1.5s"
	[ "${wbytes:-0}" -ge 8388608 ]; check io-stat-wbytes $? "wbytes=${wbytes:-none}"
fi

# --- oom victim: the memcg OOM killer must fire inside the container -------
if [ $D_LIMITED = yes ]; then
	# awk doubles a string: anonymous memory that is freed when it dies. The
	# loop is bounded (64 MiB) so a limit that did not apply cannot push the
	# whole VM into a global OOM.
	run_in $D timeout 20 awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print length(s) }' >/tmp/oom.out 2>&1
	rc=$?
	info "oom-victim exit=$rc output=$(cat /tmp/oom.out | tr '\n' ' ')"
	ooms=$(key $D/memory.events oom_kill)
	[ "$ooms" -ge 1 ]; check oom-kill $? "memory.events oom_kill=$ooms"
	kill -0 $SLEEPER_D 2>/dev/null; check oom-spared-sleeper $? "sleeper pid=$SLEEPER_D"
else
	err "oom-victim skipped: memory.max not set"
fi

for cg in $A $B $C $D; do
	for p in cpu memory io; do
		[ -e $cg/$p.pressure ]; check pressure-file $? "$cg/$p.pressure"
	done
done
info "disk-writer io.pressure $(head -n 1 $C/io.pressure)"
info "oom-victim memory.pressure $(head -n 1 $D/memory.pressure)"

if [ -f /etc/scenario-extra.sh ]; then
	echo "=== EXTRA BEGIN ==="
	. /etc/scenario-extra.sh || err "scenario-extra.sh exit $?"
	echo "=== EXTRA END ==="
fi

dump_all() {
	echo "=== DUMP BEGIN $1 uptime=$(now) ==="
	for cg in $CG $CG/docker $CG/system.slice $A $B $C $D; do dump_cgroup $cg; done
	dump_files /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io /proc/self/mountinfo /proc/$SLEEPER_D/cgroup
	echo "=== DUMP END $1 uptime=$(now) ==="
}

dump_all before

# --- the exporter -----------------------------------------------------------
if [ -x /bin/stevedore ]; then
	# The argument string is shell syntax (quotes keep globs away from this
	# shell), so it can change without touching this file.
	eval "set -- $(cat /etc/stevedore.args)"
	info "stevedore args: $*"
	timeout 60 /bin/stevedore "$@" >/tmp/stevedore.out 2>/tmp/stevedore.err
	rc=$?
	# stdout is kept apart from stderr so log lines never split a metric line.
	echo "=== STEVEDORE BEGIN ==="
	cat /tmp/stevedore.out
	[ -s /tmp/stevedore.out ] && [ -n "$(tail -c 1 /tmp/stevedore.out)" ] && echo
	echo "=== STEVEDORE END ==="
	echo "=== STEVEDORE STDERR BEGIN ==="
	cat /tmp/stevedore.err
	[ -s /tmp/stevedore.err ] && [ -n "$(tail -c 1 /tmp/stevedore.err)" ] && echo
	echo "=== STEVEDORE STDERR END ==="
	echo "=== STEVEDORE EXIT $rc ==="
else
	echo "=== STEVEDORE SKIPPED no /bin/stevedore ==="
fi

dump_all after

# Kernel messages are silenced on the console (loglevel=0); the OOM report is
# still useful when oom-kill fails.
echo "=== DMESG BEGIN ==="
dmesg | grep -iE 'oom|killed process|memory cgroup' | tail -n 20
echo "=== DMESG END ==="

echo "=== ERRORS $ERRORS ==="
echo "=== SCENARIO COMPLETE uptime=$(now) ==="
poweroff -f
# Only reached if ACPI power-off failed: exiting init panics the kernel, and
# panic=-1 with -no-reboot turns that into a qemu exit too.
sleep 5
exit 1
