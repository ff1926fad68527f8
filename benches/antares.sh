#!/usr/bin/env bash
# benches/antares.sh: how fast Antares hands out a mount, and what one more mount costs in memory.
#
#   bash benches/antares.sh                        # 50 mounts of src/ of this repository
#   BENCH_MOUNTS=200 BENCH_PATH=/ bash benches/antares.sh
#
# What it measures, against one `scorpio antares serve` over a local remote (default: this
# repository's own git directory, so no server is needed):
#   1. one warm-up mount (it lists the directory from the remote into the shared inode table),
#      deleted again; the daemon's RSS is read (VmRSS) after it;
#   2. BENCH_MOUNTS times, one after the other: POST /mounts, then list the root of the new
#      mountpoint (os.listdir); the time from sending the request to having the listing;
#      p50 / p99 / max over all of them;
#   3. the daemon's RSS with every mount alive, and (RSS after - RSS before) / BENCH_MOUNTS;
#   4. DELETE of every mount (p50 / p99), then SIGTERM: the exit status must be 0 and no FUSE
#      mount may be left.
# Exit status: 0, 3 when something looked wrong (listed under SURPRISES), 1 on errors.
#
# Needs: python3, fusermount3, /dev/fuse; normally run as root (mounts are made by mount(2)).
# Builds nothing: it uses ${SCORPIO_BIN:-target/release/scorpio}.
#
# Environment knobs:
#   BENCH_MOUNTS (50)  BENCH_PATH (src)  BENCH_REMOTE (this repository)  BENCH_TMP (/var/tmp)
#   BENCH_KEEP (0: 1 keeps the temp dir)  SCORPIO_BIN (target/release/scorpio)
set -euo pipefail
export LC_ALL=C

BENCH_MOUNTS=${BENCH_MOUNTS:-50}
BENCH_PATH=${BENCH_PATH:-src}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
BENCH_KEEP=${BENCH_KEEP:-0}

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_REMOTE=${BENCH_REMOTE:-$REPO_DIR}
scorpio_bin "$REPO_DIR"

need_posint BENCH_MOUNTS
[[ -x $SCORPIO_BIN ]] || die "no binary at $SCORPIO_BIN (cargo build --release, or set SCORPIO_BIN)"
need_tools "Debian: python3 fuse3" python3 fusermount3
need_fuse

# The daemon is stopped, and every mount under the temp dir undone, even after an error.
install_cleanup
make_root scorpio-antares-bench
WORK=$ROOT

PORT=$(free_port)
MAX=$((BENCH_MOUNTS + 8))
scorpio_config "$WORK/scorpio.toml" "$BENCH_REMOTE" "$WORK/ws" "$WORK/store" "" "${BENCH_LOG:-warn}"
cat >>"$WORK/scorpio.toml" <<EOF
[antares]
bind = "127.0.0.1:$PORT"
mount_root = "$WORK/mnt"
upper_root = "$WORK/upper"
cl_root = "$WORK/cl"
max_mounts = $MAX
EOF

launch_scorpio "$WORK/scorpio.toml" "" "$WORK/daemon.log" antares serve
PID=$DPID

set +e
python3 - "$PORT" "$PID" "$BENCH_MOUNTS" "$BENCH_PATH" "$WORK" <<'PY'
import http.client, json, os, statistics, sys, time

port, pid, n, path, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
surprises = []

def call(method, url, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, url, body=json.dumps(body) if body is not None else None,
              headers={"content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data or b"null")

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

deadline = time.time() + 60
while True:
    try:
        if call("GET", "/health")[0] == 200:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("antares serve did not come up; see daemon.log")
    time.sleep(0.05)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]

# Warm-up: the first mount lists the directory from the remote into the shared table.
st, m = call("POST", "/mounts", {"path": path})
assert st == 201, m
os.listdir(m["mountpoint"])
call("DELETE", f"/mounts/{m['mount_id']}")
time.sleep(0.5)
before = rss_kib()

lat, ids = [], []
entries = None
for i in range(n):
    t0 = time.perf_counter()
    st, m = call("POST", "/mounts", {"path": path, "job_id": f"bench-{i}"})
    names = os.listdir(m["mountpoint"]) if st == 201 else None
    t1 = time.perf_counter()
    if st != 201:
        sys.exit(f"mount {i} refused: {st} {m}")
    if entries is None:
        entries = len(names)
    elif len(names) != entries:
        surprises.append(f"mount {i} lists {len(names)} entries, the first {entries}")
    lat.append((t1 - t0) * 1000)
    ids.append(m["mount_id"])
time.sleep(0.5)
after = rss_kib()

dl = []
for mid in ids:
    t0 = time.perf_counter()
    st, v = call("DELETE", f"/mounts/{mid}")
    dl.append((time.perf_counter() - t0) * 1000)
    if st != 200:
        surprises.append(f"DELETE {mid}: {st} {v}")
left = [l.split()[1] for l in open("/proc/mounts") if l.split()[2].startswith("fuse") and l.split()[1].startswith(work)]
if left:
    surprises.append(f"mounts left after DELETE: {left}")

print(f"antares: {n} mounts of /{path.strip('/')} ({entries} entries at the root), one after the other")
print(f"  create + list root   p50 {pct(lat, 50):7.2f} ms   p99 {pct(lat, 99):7.2f} ms   max {max(lat):7.2f} ms   mean {statistics.mean(lat):7.2f} ms")
print(f"  delete               p50 {pct(dl, 50):7.2f} ms   p99 {pct(dl, 99):7.2f} ms   max {max(dl):7.2f} ms")
print(f"  daemon RSS           {before / 1024:7.1f} MiB with none, {after / 1024:7.1f} MiB with {n}: "
      f"{(after - before) / n:7.1f} KiB per extra mount")
if surprises:
    print("SURPRISES:")
    for s in surprises:
        print("  " + s)
    sys.exit(3)
PY
rc=$?
set -e
[[ $rc == 0 || $rc == 3 ]] || { say "--- daemon log ---"; tail -20 "$WORK/daemon.log" >&2; exit 1; }

stop_daemon "$PID" quiet
status=$REAPED
if [[ $status != 0 ]]; then
    echo "SURPRISES:"; echo "  antares serve exited $status after SIGTERM"; rc=3
fi
left=$(mounts_under_root)
if [[ -n $left ]]; then
    echo "SURPRISES:"; echo "  mounts left after SIGTERM: $left"; rc=3
fi
echo "  SIGTERM: exit $status, no mount left"
exit "$rc"
