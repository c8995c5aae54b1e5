#!/bin/sh
# Inside the engine test VM (systemd, cgroup v2, Docker's systemd driver): the real-engine
# workloads of the suite, run against this engine with a statically linked stevedore, and the
# raw evidence of each gathered into $OUT on the host's share: scrapes, the engine's own JSON
# (inspect, stats, events), the cgroup files. Nothing is judged here beyond waiting for what
# shows a step is done: tests/cgroup_v2_engine.rs parses and checks every value. A step that
# times out is written to $OUT/errors and the script goes on, so one failure still leaves the
# evidence of the others.
#
# Run by stevedore-test.service (see build-image.sh) with the share at /mnt/host holding
# this script and `stevedore`. The VM powers off when it returns.
set -u

SHARE=/mnt/host
OUT=$SHARE/out
rm -rf "$OUT"
mkdir -p "$OUT"
IMAGE=stevedore-test-busybox:latest
LABEL=stevedore.test=v2-engine
EXPORTER=http://127.0.0.1:9417
ENFORCER=http://127.0.0.1:9418
MIB=1048576

now() { cut -d' ' -f1 /proc/uptime; }
# The engine stamps events on this clock; seconds.nanoseconds is what its API takes.
epoch() { date +%s.%N; }
# Progress on the console (the host keeps the serial log) and in the share.
say() { echo "=== $* uptime=$(now)"; echo "$* uptime=$(now)" >>"$OUT/steps"; }
err() { echo "=== ERROR $*"; echo "$*" >>"$OUT/errors"; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND until it succeeds; on timeout the step is
# recorded as an error (with WHAT) and the caller goes on. Every poll forks a few processes,
# which is not free under emulation: twice a second.
wait_until() {
	limit=$1 what=$2
	shift 2
	deadline=$(awk -v n="$(now)" -v l="$limit" 'BEGIN { print n + l }')
	until "$@"; do
		if awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
			err "timed out after ${limit}s waiting for $what"
			return 1
		fi
		sleep 0.5
	done
}

# The engine's API, raw.
api() { curl -sS --max-time 60 --unix-socket /run/docker.sock "http://docker$1"; }
# scrape URL: one exposition on stdout.
scrape() { curl -sS --max-time 30 "$1/metrics"; }
save_scrape() { scrape "${2:-$EXPORTER}" >"$OUT/$1.prom" || err "scrape for $1"; }
# metric FILE NAME [LABEL=VALUE...]: the value of the one sample of NAME with those labels.
metric() {
	file=$1 name=$2
	shift 2
	awk -v name="$name" -v want="$*" '
		index($0, name "{") == 1 || index($0, name " ") == 1 {
			n = split(want, pairs, " ")
			for (i = 1; i <= n; i++) {
				split(pairs[i], kv, "=")
				if (index($0, kv[1] "=\"" kv[2] "\"") == 0) next
			}
			print $NF
			exit
		}' "$file"
}
# live NAME [LABEL=VALUE...]: the same from a scrape taken now.
live() {
	scrape "$EXPORTER" >/tmp/live.prom 2>/dev/null || return 1
	metric /tmp/live.prom "$@"
}
# A number at least another (both may be decimals).
at_least() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# No network for the test containers: nothing here needs one, and the engine in this VM has
# no bridge (a veth, a bridge port and firewall rules per start cost seconds under emulation).
run() { docker run -d --network none --label "$LABEL" "$@"; }
pid_of() { docker inspect -f '{{.State.Pid}}' "$1"; }
# The container's cgroup as the kernel has it (the main process's /proc/<pid>/cgroup).
cgroup_of() { sed -n 's/^0:://p' "/proc/$(pid_of "$1")/cgroup"; }

# dump NAME DIR...: every readable file of each cgroup directory, between markers, as the
# kernel test's harness dumps them. One awk for all files: forks are slow under emulation.
dump() {
	name=$1
	shift
	for dir in "$@"; do
		stat -c '%A %n' "$dir"/* | awk '$1 ~ /^-r/ { print $2 }'
	done | xargs awk 'BEGIN {
		for (i = 1; i < ARGC; i++) {
			f = ARGV[i]; body = ""
			while ((r = (getline line < f)) > 0) body = body line "\n"
			close(f)
			if (r < 0) { print "=== ERROR read " f " ==="; continue }
			print "=== FILE " f " ==="
			printf "%s", body
			print "=== END FILE ==="
		}
		exit
	}' >"$OUT/$name.cgroup"
}
# One file's content, for waiting on it.
file_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }

say "START"

# --- the machine ------------------------------------------------------------------------
api /version >"$OUT/version.json"
api /info >"$OUT/info.json"
cat /proc/cmdline >"$OUT/cmdline"
stat -f -c %T /sys/fs/cgroup >"$OUT/cgroupfs-type"
cat /sys/block/vda/dev >"$OUT/vda-dev"
cat /proc/1/comm >"$OUT/init"
nproc >"$OUT/nproc"
cp /proc/meminfo "$OUT/meminfo"
systemctl show docker.service -p ActiveState -p ControlGroup >"$OUT/docker-unit"

# --- the test image, without a registry -----------------------------------------------------
# FROM scratch + Debian's static busybox, as tests/common builds it on a host, by import (no
# build container to start under emulation).
mkdir -p /tmp/image/bin /tmp/image/tmp /tmp/image/proc /tmp/image/sys /tmp/image/dev /tmp/image/etc
cp /bin/busybox /tmp/image/bin/busybox
# In a chroot, so the links point at /bin/busybox as the container will see it.
chroot /tmp/image /bin/busybox --install -s /bin
tar -C /tmp/image -c . | docker import -c 'CMD ["sh"]' - "$IMAGE" >/dev/null || err "docker import"
say "IMAGE"

# --- the exporter -----------------------------------------------------------------------------
install -m 755 "$SHARE/stevedore" /usr/local/bin/stevedore
stevedore --web.listen-address=127.0.0.1:9417 --log.level=debug \
	--docker.env-allowlist='APP_T*' >/dev/null 2>"$OUT/exporter.log" &
EXPORTER_PID=$!
up() { [ "$(live docker_up)" = 1 ]; }
wait_until 30 "the exporter to reach the engine" up
say "EXPORTER"

# --- every engine event counted exactly once; exit codes and restarts ---------------------------
# First, while no container exists, so nothing but these steps causes events in the window
# (health checks, an exec every second, start only after it). A restart policy runs its
# course in the window too: container starts take seconds under emulation.
# event_total FILE: the sum of docker_events_total.
event_total() { awk '/^docker_events_total\{/ { s += $NF } END { print s + 0 }' "$1"; }
# state NAME STATE STEP: waits until the exporter shows NAME in STATE and keeps that scrape.
in_state() { [ "$(live docker_container_state name="$1" state="$2")" = 1 ]; }
state() {
	wait_until 30 "$1 to be $2 ($3)" in_state "$1" "$2"
	cp /tmp/live.prom "$OUT/events.$3.prom"
	echo "$3 $1 $2" >>"$OUT/events.steps"
}
save_scrape events.before
EVENTS_SINCE=$(epoch)
RESTARTS=$(run --name stevedore-restarts --restart on-failure:1 "$IMAGE" sh -c 'exit 3')
echo "$RESTARTS" >"$OUT/restarts.id"
LIFE=$(docker create --network none --label "$LABEL" --name stevedore-life-a "$IMAGE" sleep 600)
echo "$LIFE" >"$OUT/events.id"
state stevedore-life-a created 1-create
docker start "$LIFE" >/dev/null
state stevedore-life-a running 2-start
docker pause "$LIFE" >/dev/null
state stevedore-life-a paused 3-pause
docker unpause "$LIFE" >/dev/null
state stevedore-life-a running 4-unpause
docker kill "$LIFE" >/dev/null
state stevedore-life-a exited 5-kill
docker restart -t 0 "$LIFE" >/dev/null
state stevedore-life-a running 6-restart
docker rename stevedore-life-a stevedore-life-b
state stevedore-life-b running 7-rename
docker rm -f "$LIFE" >/dev/null
gone() { live docker_up >/dev/null && ! grep -q "$LIFE" /tmp/live.prom; }
wait_until 30 "the removed container to go" gone && cp /tmp/live.prom "$OUT/events.8-rm.prom"
restarted() {
	[ "$(live docker_container_restart_count name=stevedore-restarts)" = 1 ] &&
		[ "$(metric /tmp/live.prom docker_container_state name=stevedore-restarts state=exited)" = 1 ]
}
wait_until 90 "the restart and the exit" restarted && cp /tmp/live.prom "$OUT/restarts.prom"
api "/containers/$RESTARTS/json" >"$OUT/restarts.inspect.json"
EVENTS_UNTIL=$(epoch)
echo "$EVENTS_SINCE $EVENTS_UNTIL" >"$OUT/events.window"
api "/events?since=$EVENTS_SINCE&until=$EVENTS_UNTIL" >"$OUT/events.window.json"
expected=$(grep -c '"Type"' "$OUT/events.window.json")
base=$(event_total "$OUT/events.before.prom")
caught_up() {
	live docker_up >/dev/null &&
		[ "$(event_total /tmp/live.prom)" = "$((base + expected))" ]
}
wait_until 30 "the exporter to count the window's $expected events" caught_up &&
	cp /tmp/live.prom "$OUT/events.caught-up.prom"
# A marker after the window: once it is counted, everything sent before it was too, and a
# count still equal to the engine's then means nothing was counted twice.
docker network create --label "$LABEL" stevedore-events-marker >/dev/null
docker network rm stevedore-events-marker >/dev/null
MARKER_UNTIL=$(epoch)
api "/events?since=$EVENTS_SINCE&until=$MARKER_UNTIL" >"$OUT/events.marker.json"
expected=$(grep -c '"Type"' "$OUT/events.marker.json")
wait_until 30 "the exporter to count the marker too ($expected events)" caught_up &&
	cp /tmp/live.prom "$OUT/events.settled.prom"
say "EVENTS"

# --- exact limits from docker run flags, on a throttled CPU burner holding 32 MiB in tmpfs -----
# Device limits are the disk writer's below: this CLI drops them (see there).
BURNER=$(run --name stevedore-burner --cpus 0.2 --memory 128m --memory-swap 256m \
	--memory-reservation 32m --cpu-shares 512 --cpuset-cpus 0 --pids-limit 50 --tmpfs /hold \
	--label com.docker.compose.project=shop --label org.label-schema.group=monitoring \
	--env APP_TIER=web --env APP_SECRET=hunter2 "$IMAGE" \
	sh -c 'dd if=/dev/zero of=/hold/fill bs=1M count=32 2>/dev/null && while :; do :; done')
echo "$BURNER" >"$OUT/burner.id"
BURNER_CG=/sys/fs/cgroup$(cgroup_of "$BURNER")
cgroup_of "$BURNER" >"$OUT/burner.path"
held() { at_least "$(awk '$1 == "shmem" { print $2 }' "$BURNER_CG/memory.stat")" $((32 * MIB)); }
wait_until 60 "32 MiB in the burner's tmpfs" held
has_burner() { [ -n "$(live container_cpu_usage_seconds_total name=stevedore-burner cpu=total)" ]; }
wait_until 20 "the burner's series" has_burner
start=$(now)
save_scrape burner.first
first_usage=$(metric "$OUT/burner.first.prom" container_cpu_usage_seconds_total name=stevedore-burner cpu=total)
first_throttled=$(metric "$OUT/burner.first.prom" container_cpu_cfs_throttled_periods_total name=stevedore-burner)
# The kernel counts a throttled period when it starts and adds its time when it ends: both.
throttled() {
	live container_cpu_usage_seconds_total name=stevedore-burner cpu=total >/dev/null || return 1
	used=$(metric /tmp/live.prom container_cpu_usage_seconds_total name=stevedore-burner cpu=total)
	periods=$(metric /tmp/live.prom container_cpu_cfs_throttled_periods_total name=stevedore-burner)
	time=$(metric /tmp/live.prom container_cpu_cfs_throttled_seconds_total name=stevedore-burner)
	at_least "$used" "$(awk -v u="$first_usage" 'BEGIN { print u + 0.05 }')" &&
		[ "$periods" != "$first_throttled" ] && at_least "$time" 0.000001
}
wait_until 60 "the burner to be throttled" throttled && cp /tmp/live.prom "$OUT/burner.second.prom"
echo "$start $(now)" >"$OUT/burner.window"
dump burner.before "$BURNER_CG"
save_scrape burner.before-stats
api "/containers/$BURNER/stats?stream=false" >"$OUT/burner.stats.json"
save_scrape burner.after-stats
dump burner.after "$BURNER_CG"
api "/containers/$BURNER/json" >"$OUT/burner.inspect.json"
# Its 20% of the one emulated CPU would slow every step after this one.
docker rm -f "$BURNER" >/dev/null
say "BURNER"

# --- direct writes under a device write limit on the guest's disk, then an OOM kill -------------
# One container for both (each start costs seconds under emulation): it writes, then waits
# for the word to allocate until its memory limit's OOM killer strikes.
#
# Debian 13's docker CLI (26.1.5) sends --device-read-bps, --device-write-bps and the iops
# flags to the engine as empty lists: the container would run unlimited, with no warning.
# What the CLI does is kept as evidence; the container is made through the engine's API
# with what those flags mean (the engine honours them there).
docker create --network none --label "$LABEL" --device-write-bps /dev/vda:4mb \
	--device-read-iops /dev/vda:300 "$IMAGE" true >"$OUT/cli-device.id"
api "/containers/$(cat "$OUT/cli-device.id")/json" >"$OUT/cli-device.inspect.json"
docker rm "$(cat "$OUT/cli-device.id")" >/dev/null
DATA=/var/lib/stevedore-data/writer
mkdir -p $DATA
# 16 MiB. The allocation waits for the word, so it never races the container's start (the
# OOM killer would then choose among runc's processes too). It is a child, so the container
# lives on and its cgroup can be read; a signal ends it (an exec would start runc in the full
# cgroup).
cat >$DATA/run.sh <<'WRITER'
trap "exit 0" USR1
a=$(cut -d" " -f1 /proc/uptime)
dd if=/dev/zero of=/data/out bs=1M count=8 oflag=direct 2>/data/dd.err || exit 1
echo "$a $(cut -d" " -f1 /proc/uptime)" >/data/window.tmp && mv /data/window.tmp /data/window
while [ ! -e /data/allocate ]; do sleep 0.2; done
tail /dev/zero
while :; do sleep 0.1; done
WRITER
# docker run --network none -v $DATA:/data --memory 16m --memory-swap 16m
#   --device-write-bps /dev/vda:4mb --device-read-iops /dev/vda:300 --label ... IMAGE sh /data/run.sh
curl -sS --unix-socket /run/docker.sock -H 'Content-Type: application/json' \
	"http://docker/containers/create?name=stevedore-writer" -d '{
	"Image": "'"$IMAGE"'", "Cmd": ["sh", "/data/run.sh"],
	"Labels": {"stevedore.test": "v2-engine"},
	"HostConfig": {
		"NetworkMode": "none",
		"Binds": ["'"$DATA"':/data"],
		"Memory": 16777216, "MemorySwap": 16777216,
		"BlkioDeviceWriteBps": [{"Path": "/dev/vda", "Rate": 4194304}],
		"BlkioDeviceReadIOps": [{"Path": "/dev/vda", "Rate": 300}]
	}}' >"$OUT/writer.create.json" || err "creating stevedore-writer"
WRITER=$(sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p' "$OUT/writer.create.json")
docker start "$WRITER" >/dev/null || err "starting stevedore-writer"
echo "$WRITER" >"$OUT/writer.id"
WRITER_CG=/sys/fs/cgroup$(cgroup_of "$WRITER")
cgroup_of "$WRITER" >"$OUT/writer.path"
written() { [ -s $DATA/window ]; }
wait_until 60 "8 MiB written" written
cp $DATA/window "$OUT/disk.window"
has_writes() { [ -n "$(live container_fs_writes_bytes_total name=stevedore-writer device=/dev/vda)" ]; }
wait_until 20 "the writer's series" has_writes
dump disk.before "$WRITER_CG"
save_scrape disk
dump disk.after "$WRITER_CG"
api "/containers/$WRITER/json" >"$OUT/writer.inspect.json"
say "DISK"

save_scrape oom.before
OOM_SINCE=$(epoch)
touch $DATA/allocate
killed() { at_least "$(awk '$1 == "oom_kill" { print $2 }' "$WRITER_CG/memory.events")" 1; }
wait_until 60 "the kernel's OOM kill" killed
before=$(metric "$OUT/oom.before.prom" docker_events_total type=container action=oom)
counted() {
	at_least "$(live container_oom_events_total name=stevedore-writer)" 1 &&
		at_least "$(metric /tmp/live.prom docker_events_total type=container action=oom)" $((${before:-0} + 1))
}
wait_until 30 "the OOM kill in the exporter (kernel and engine)" counted && cp /tmp/live.prom "$OUT/oom.running.prom"
dump oom "$WRITER_CG"
docker kill --signal USR1 "$WRITER" >/dev/null || err "docker kill --signal USR1"
oom_exited() { [ "$(live docker_container_state name=stevedore-writer state=exited)" = 1 ]; }
wait_until 30 "the OOM victim to exit" oom_exited && cp /tmp/live.prom "$OUT/oom.exited.prom"
api "/containers/$WRITER/json" >"$OUT/oom.inspect.json"
api "/events?since=$OOM_SINCE&until=$(epoch)" >"$OUT/oom.events.json"
say "OOM"

# --- a failing health check followed over time ---------------------------------------------------
# One container whose check passes until a file appears on its bind mount: healthy first, then
# failing probe after probe. Each probe is an exec, seconds of emulated CPU: it runs only for
# this step.
mkdir -p /var/lib/stevedore-data/health
run --name stevedore-health -v /var/lib/stevedore-data/health:/h --health-cmd 'test ! -e /h/fail' \
	--health-interval 1s --health-retries 1 --health-start-period 0s "$IMAGE" sleep 600 \
	>"$OUT/health.id"
healthy() { [ "$(live docker_container_health_status name=stevedore-health status=healthy)" = 1 ]; }
wait_until 60 "the passing check" healthy && cp /tmp/live.prom "$OUT/health.first.prom"
touch /var/lib/stevedore-data/health/fail
unhealthy() { [ "$(live docker_container_health_status name=stevedore-health status=unhealthy)" = 1 ]; }
wait_until 60 "the failing check" unhealthy && cp /tmp/live.prom "$OUT/health.unhealthy.prom"
# The streak grows with every probe while the status stays unhealthy, so no status event
# says so: each engine reading is caught up with, and the pairs are kept ("engine ours").
streak() { api /containers/stevedore-health/json | sed -n 's/.*"FailingStreak":\([0-9]*\).*/\1/p'; }
first=$(streak)
echo "$first start" >"$OUT/health.streak"
ours=0
deadline=$(awk -v n="$(now)" 'BEGIN { print n + 120 }')
while ! at_least "$ours" $((first + 3)) && awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n < d) }'; do
	engine=$(streak)
	caught() { at_least "$(live docker_container_health_failing_streak name=stevedore-health)" "$engine"; }
	wait_until 10 "our streak to reach the engine's $engine" caught || break
	ours=$(metric /tmp/live.prom docker_container_health_failing_streak name=stevedore-health)
	echo "$engine $ours" >>"$OUT/health.streak"
done
echo "$(streak) end" >>"$OUT/health.streak"
api /containers/stevedore-health/json >"$OUT/health.inspect.json"
docker rm -f stevedore-health >/dev/null
say "HEALTH"

# --- a policy enforced: engine update plus io.max, drift 0 after ---------------------------------
cat >/tmp/policy.yaml <<'POLICY'
rules:
  - name: v2-engine
    match: {name: "stevedore-pol-*"}
    limits:
      memory: 96m
      memory-swap: 128m
      memory-reservation: 48m
      cpus: 0.5
      cpu-shares: 256
      cpuset-cpus: "0"
      pids-limit: 60
      device-write-bps: ["/dev/vda:10mb"]
      device-read-iops: ["/dev/vda:500"]
POLICY
cp /tmp/policy.yaml "$OUT/policy.yaml"
stevedore --web.listen-address=127.0.0.1:9418 --log.level=debug \
	--policy.file=/tmp/policy.yaml --policy.mode=enforce >/dev/null 2>"$OUT/enforcer.log" &
ENFORCER_PID=$!
enforcer_up() { [ "$(scrape $ENFORCER 2>/dev/null | metric /dev/stdin docker_up)" = 1 ]; }
wait_until 30 "the enforcer to reach the engine" enforcer_up
# The container writes 20 MiB directly each time it starts, once the host side says go (the
# limits are in place), and times it: no exec, whose runc would cost seconds.
DATA=/var/lib/stevedore-data/pol
mkdir -p $DATA
cat >$DATA/write.sh <<'WRITE'
n=$(($(ls /data | grep -c '^started\.') + 1))
touch /data/started.$n
while [ ! -e /data/go ]; do sleep 0.2; done
a=$(cut -d" " -f1 /proc/uptime)
dd if=/dev/zero of=/data/out bs=1M count=20 oflag=direct 2>/data/dd.$n || exit 1
echo "$a $(cut -d" " -f1 /proc/uptime)" >/data/window.tmp && mv /data/window.tmp /data/window.$n
exec sleep 600
WRITE
POL=$(run --name stevedore-pol-1 -v $DATA:/data "$IMAGE" sh /data/write.sh)
ran=$(now)
echo "$POL" >"$OUT/pol.id"
POL_CG=/sys/fs/cgroup$(cgroup_of "$POL")
cgroup_of "$POL" >"$OUT/pol.path"
VDA=$(cat /sys/block/vda/dev)
# What the kernel holds once the engine update and the device limits are in: every file.
applied() {
	file_is "$POL_CG/memory.max" $((96 * MIB)) && file_is "$POL_CG/memory.swap.max" $((32 * MIB)) &&
		file_is "$POL_CG/memory.low" $((48 * MIB)) && file_is "$POL_CG/cpu.max" "50000 100000" &&
		file_is "$POL_CG/cpuset.cpus" 0 && file_is "$POL_CG/pids.max" 60 &&
		file_is "$POL_CG/io.max" "$VDA rbps=max wbps=$((10 * MIB)) riops=500 wiops=max"
}
wait_until 30 "the policy's limits in the cgroup" applied
echo "$ran $(now)" >"$OUT/pol.window"
counted_applied() {
	scrape $ENFORCER >/tmp/enforcer.prom 2>/dev/null &&
		[ -n "$(metric /tmp/enforcer.prom stevedore_policy_applied_total rule=v2-engine result=applied)" ]
}
wait_until 20 "the application counted" counted_applied && cp /tmp/enforcer.prom "$OUT/pol.applied.prom"
dump pol.applied "$POL_CG"
api "/containers/$POL/json" >"$OUT/pol.inspect.json"
touch $DATA/go
wrote() { [ -s "$DATA/window.$1" ]; }
wait_until 60 "20 MiB written under the policy" wrote 1 && cp $DATA/window.1 "$OUT/pol.first.window"
rm $DATA/go
docker restart -t 0 "$POL" >/dev/null
started() { [ -e "$DATA/started.2" ]; }
wait_until 30 "the restarted writer" started
POL_CG=/sys/fs/cgroup$(cgroup_of "$POL")
cgroup_of "$POL" >"$OUT/pol.restarted.path"
wait_until 30 "the policy's limits after a restart" applied
touch $DATA/go
wait_until 60 "20 MiB written after the restart" wrote 2 && cp $DATA/window.2 "$OUT/pol.again.window"
settled() {
	scrape $ENFORCER >/tmp/enforcer.prom 2>/dev/null &&
		[ -n "$(metric /tmp/enforcer.prom stevedore_policy_drift name=stevedore-pol-1)" ]
}
wait_until 20 "the enforcer's scrape after the restart" settled && cp /tmp/enforcer.prom "$OUT/pol.after.prom"
dump pol.after "$POL_CG"
api "/containers/$POL/json" >"$OUT/pol.after.inspect.json"
say "POLICY"

# The root: the machine's totals.
dump root.before /sys/fs/cgroup
save_scrape final
dump root.after /sys/fs/cgroup
kill "$EXPORTER_PID" "$ENFORCER_PID" 2>/dev/null
# Where the boot's time went, for the README's numbers and a slow run's reader.
journalctl -b -o short-monotonic --no-pager -u containerd -u docker >"$OUT/engine-journal" 2>&1
{
	systemd-analyze critical-chain stevedore-test.service
	systemd-analyze blame | head -n 15
} >"$OUT/boot-time" 2>&1
# The kernel's OOM reports, for a reader of a failed run.
dmesg | grep -iE 'oom|killed process|memory cgroup' >"$OUT/dmesg-oom"
echo "$(cat "$OUT/errors" 2>/dev/null | wc -l)" >"$OUT/done"
say "DONE"
