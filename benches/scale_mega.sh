#!/usr/bin/env bash
# benches/scale_mega.sh: the `mega` remote under many reads (issue 15, item 3), against the real
# Mega server (`mono`, ../shared/mega), in one run: `stat` of every file and a read of every file
# through Scorpio vs `git clone` of the same repository from the same server, directly and with
# BENCH_DELAY_MS added to every round trip. Sourceable by benches/scale.sh for its Mega part
# (`source benches/scale_mega.sh` runs it; set its knobs first).
#
#   bash benches/scale_mega.sh                          # a git.git-like snapshot, ~2-4 minutes
#   BENCH_SNAPSHOT=~/src/git bash benches/scale_mega.sh # the HEAD tree of a repository of yours
#
# What it does:
#   1. the snapshot: BENCH_SNAPSHOT's HEAD tree (git archive), else a generated git.git-like
#      tree (BENCH_FILES files in ~BENCH_DIRS directories, log-normal sizes, ~BENCH_MB MB of
#      source-like text), committed once;
#   2. starts mono through mega.sh on free ports with its own state dir, pushes the snapshot to
#      /third-party/<name>;
#   3. for each of direct and +BENCH_DELAY_MS (a proxy in front of mono delaying each direction
#      by half of it, as a network would: no netem needed): `git clone` (median of BENCH_RUNS),
#      then a fresh Scorpio store and mount (fetch_concurrency = BENCH_CONCURRENCY): a walk
#      (`find -type f`), a stat of every file (python os.stat loop), a read of every file
#      (python read loop), each timed once; the mono log's request count for each;
#   4. prints the figures and the ratios stat/clone and read/clone.
# Exit status: 0, or 3 when something looked wrong (SURPRISES), 1 on errors.
#
# Needs: git, python3, curl, fusermount3, /dev/fuse, root (mega.sh runs postgres as `postgres`),
# postgresql and redis-server for mega.sh. Builds nothing: ${SCORPIO_BIN:-target/release/scorpio}.
# Knobs: BENCH_FILES (4844) BENCH_DIRS (400) BENCH_MB (48) BENCH_SEED (15) BENCH_SNAPSHOT ()
#   BENCH_DELAY_MS (20) BENCH_CONCURRENCY (64) BENCH_RUNS (3) BENCH_TMP (/var/tmp)
#   BENCH_TIMEOUT (60) BENCH_KEEP (0) SCORPIO_MEGA_DIR (../shared/mega) SCORPIO_BIN
set -euo pipefail
export LC_ALL=C

BENCH_FILES=${BENCH_FILES:-4844}
BENCH_DIRS=${BENCH_DIRS:-400}
BENCH_MB=${BENCH_MB:-48}
BENCH_SEED=${BENCH_SEED:-15}
BENCH_SNAPSHOT=${BENCH_SNAPSHOT:-}
BENCH_DELAY_MS=${BENCH_DELAY_MS:-20}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-64}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-60}
BENCH_KEEP=${BENCH_KEEP:-0}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-900}

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_posint BENCH_FILES BENCH_DIRS BENCH_MB BENCH_CONCURRENCY BENCH_RUNS BENCH_TIMEOUT CMD_TIMEOUT
[[ $BENCH_DELAY_MS =~ ^[0-9]+$ ]] || die "BENCH_DELAY_MS must be a number of milliseconds"
need_tools "install them, e.g. apt-get install git python3 curl fuse3 postgresql redis-server" \
    git python3 curl fusermount3 timeout find awk sort
need_fuse
[[ $(id -u) -eq 0 ]] || die "mega.sh needs root (it runs postgres as the postgres user)"
PY=$(python3 -c 'import sys; print(sys.executable)')
MEGA_DIR=${SCORPIO_MEGA_DIR:-$REPO_DIR/../shared/mega}
[[ -f $MEGA_DIR/mega.sh && -x $MEGA_DIR/mono ]] || die "no mega.sh and mono in $MEGA_DIR (set SCORPIO_MEGA_DIR)"
scorpio_bin "$INVOKE_DIR"
[[ -x $SCORPIO_BIN ]] || die "no scorpio binary at $SCORPIO_BIN; build it first: (cd $REPO_DIR && cargo build --release)"

make_root scorpio-mega
install_cleanup
MEGA_STATE=$ROOT/mega
# postgres runs as its own user and must reach its cluster under the state dir.
chmod 755 "$ROOT"
PROXY_PID=
before_cleanup() {
    [[ -z $PROXY_PID ]] || kill "$PROXY_PID" 2>/dev/null || true
    [[ ! -d $MEGA_STATE ]] || MEGA_PORT=$MEGA_PORT MEGA_PG_PORT=$MEGA_PG_PORT MEGA_REDIS_PORT=$MEGA_REDIS_PORT \
        bash "$MEGA_DIR/mega.sh" stop "$MEGA_STATE" >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------------------------ the snapshot
SNAP=$ROOT/snapshot
mkdir -p "$SNAP"
if [[ -n $BENCH_SNAPSHOT ]]; then
    say "snapshot: HEAD of $BENCH_SNAPSHOT"
    git -C "$BENCH_SNAPSHOT" archive HEAD | tar -x -C "$SNAP"
else
    say "snapshot: generating $BENCH_FILES files in ~$BENCH_DIRS directories, ~$BENCH_MB MB"
    "$PY" - "$SNAP" "$BENCH_FILES" "$BENCH_DIRS" "$BENCH_MB" "$BENCH_SEED" <<'EOF'
import os, random, sys
# git.git-like: a few wide directories (Zipf-like weights) and many small ones, up to 4 levels;
# log-normal sizes (median ~3 KB, some hundreds of KB); source-like text (compresses like code).
out, files, dirs, total_mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz_') for _ in range(rng.randint(2, 12))) for _ in range(3000)]
paths = ['']
while len(paths) < dirs:
    parent = rng.choice(paths[: max(1, len(paths) // 2 + 1)])
    if parent.count('/') < 3:
        paths.append((parent + '/' if parent else '') + rng.choice(words) + str(len(paths)))
weights = [1.0 / (i + 1) ** 0.9 for i in range(len(paths))]
rng.shuffle(weights)
sizes = [min(int(rng.lognormvariate(8.0, 1.3)), 600_000) for _ in range(files)]
scale = total_mb * 1_000_000 / sum(sizes)
def text(n):
    lines, size = [], 0
    while size < n:
        line = '\t' * rng.randint(0, 3) + ' '.join(rng.choice(words) for _ in range(rng.randint(1, 12))) + ';\n'
        lines.append(line); size += len(line)
    return ''.join(lines)[:n]
for i, n in enumerate(sizes):
    full = os.path.join(out, rng.choices(paths, weights)[0], f'f{i:05d}.c')
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as f:
        f.write(text(int(n * scale)))
EOF
fi
commit_dir "$SNAP" snapshot
N_FILES=$(git -C "$SNAP" ls-files | wc -l)
N_DIRS=$(git -C "$SNAP" ls-tree -r -d HEAD | wc -l)
SNAP_MB=$(du -sm --apparent-size --exclude=.git "$SNAP" | awk '{print $1}')
say "snapshot: $N_FILES files, $N_DIRS directories, $SNAP_MB MB"

# ------------------------------------------------------------------------------------- mono, push
MEGA_PORT=$(free_port) MEGA_PG_PORT=$(free_port) MEGA_REDIS_PORT=$(free_port)
export MEGA_PORT MEGA_PG_PORT MEGA_REDIS_PORT
say "mono: starting on 127.0.0.1:$MEGA_PORT (state $MEGA_STATE)"
TOKEN=$(T bash "$MEGA_DIR/mega.sh" start "$MEGA_STATE" 2>"$ROOT/mega-start.log" | tail -1) \
    || die "mega.sh start failed: $(tail -5 "$ROOT/mega-start.log")"
NAME=snapshot$$
MEGA_URL=http://127.0.0.1:$MEGA_PORT
t0=$EPOCHREALTIME
T git -C "$SNAP" -c http.extraHeader="Authorization: Bearer $TOKEN" push -q \
    "$MEGA_URL/third-party/$NAME.git" HEAD:refs/heads/main 2>"$ROOT/push.log" || die "push failed: $(tail -5 "$ROOT/push.log")"
say "pushed to /third-party/$NAME in $(fsec "$t0" "$EPOCHREALTIME" %.1f) s"

# ------------------------------------------------------------------------------ the delaying proxy
# Each direction of each connection is delayed by half of BENCH_DELAY_MS (a pipe with latency,
# not a per-chunk sleep): a request and its answer cost one BENCH_DELAY_MS round trip more.
PROXY_PORT=$(free_port)
"$PY" - "$PROXY_PORT" "$MEGA_PORT" "$BENCH_DELAY_MS" >"$ROOT/proxy.log" 2>&1 <<'EOF' &
import asyncio, sys, time
listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 2000.0
async def pipe(reader, writer):
    q = asyncio.Queue()
    async def read():
        while True:
            data = await reader.read(65536)
            await q.put((time.monotonic() + delay, data))
            if not data:
                return
    async def write():
        while True:
            due, data = await q.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()
    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        writer.close()
async def serve(cr, cw):
    try:
        sr, sw = await asyncio.open_connection('127.0.0.1', target)
    except OSError:
        cw.close(); return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, '127.0.0.1', listen, backlog=1024)
    print('ready', flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF
PROXY_PID=$!
for ((i = 0; i < 100; i++)); do grep -q ready "$ROOT/proxy.log" 2>/dev/null && break; nap 0.1; done
grep -q ready "$ROOT/proxy.log" || die "the delaying proxy did not start: $(cat "$ROOT/proxy.log")"

# --------------------------------------------------------------------------------------- measuring
# requests <port>: Scorpio's remote requests so far, from its /metrics: "<sizes> <blobs> <packs>".
requests() {
    curl -sS -m 10 "http://127.0.0.1:$1/metrics" | awk '
        /^scorpio_remote_requests_total\{.*kind="size"/ {s=$NF}
        /^scorpio_remote_requests_total\{.*kind="blob"/ {b=$NF}
        /^scorpio_remote_requests_total\{.*kind="pack"/ {p=$NF}
        END {printf "%d %d %d", s, b, p}'
}

# clone_secs <url>: median of BENCH_RUNS `git clone`s.
clone_secs() {
    local url=$1 i t0 runs=()
    for ((i = 0; i < BENCH_RUNS; i++)); do
        rm -rf "$ROOT/clone"
        t0=$EPOCHREALTIME
        T git clone -q "$url/third-party/$NAME.git" "$ROOT/clone" 2>>"$ROOT/clone.log" || { runs+=(FAIL); continue; }
        runs+=("$(fsec "$t0" "$EPOCHREALTIME")")
    done
    [[ $(find "$ROOT/clone" -type f -not -path '*/.git/*' | wc -l) == "$N_FILES" ]] \
        || surprise "the clone from $url does not hold $N_FILES files"
    rm -rf "$ROOT/clone"
    median "${runs[@]}"
}

# scorpio_run <label> <url>: a fresh store and mount over <url>; sets WALK STAT READ (seconds).
scorpio_run() {
    local label=$1 url=$2 dir=$ROOT/run-$1 t0 port before after
    port=$(free_port)
    mkdir -p "$dir/ws"
    scorpio_config "$dir/scorpio.toml" "$url" "$dir/ws" "$dir/store" "$port" info
    printf 'fetch_concurrency = %s\nrequest_timeout_secs = 120\n' "$BENCH_CONCURRENCY" >>"$dir/scorpio.toml"
    launch_scorpio "$dir/scorpio.toml" "$dir/ws" "$dir/scorpio.log"
    local pid=$DPID
    wait_fuse_mount "$pid" "$dir/ws" 0.05 || die "scorpio did not mount ($label): $(tail -5 "$dir/scorpio.log")"
    local top=$dir/ws/third-party/$NAME
    t0=$EPOCHREALTIME
    T find "$top" -type f >"$dir/files" || surprise "$label: find failed"
    WALK=$(fsec "$t0" "$EPOCHREALTIME")
    [[ $(wc -l <"$dir/files") == "$N_FILES" ]] || surprise "$label: the walk found $(wc -l <"$dir/files") files, not $N_FILES"
    before=$(requests "$port")
    t0=$EPOCHREALTIME
    T "$PY" -c '
import os, sys
total = 0
for p in open(sys.argv[1]).read().split("\n"):
    if p: total += os.stat(p).st_size
print(total)' "$dir/files" >"$dir/stat.out" || surprise "$label: stat of every file failed"
    STAT=$(fsec "$t0" "$EPOCHREALTIME")
    after=$(requests "$port")
    STAT_REQ=$(awk -v a="$before" -v b="$after" 'BEGIN{split(a,x," "); split(b,y," "); printf "%d HEAD, %d GET, %d pack", y[1]-x[1], y[2]-x[2], y[3]-x[3]}')
    before=$after
    t0=$EPOCHREALTIME
    T "$PY" -c '
import sys
total = 0
for p in open(sys.argv[1]).read().split("\n"):
    if p:
        with open(p, "rb") as f: total += len(f.read())
print(total)' "$dir/files" >"$dir/read.out" || surprise "$label: read of every file failed"
    READ=$(fsec "$t0" "$EPOCHREALTIME")
    after=$(requests "$port")
    READ_REQ=$(awk -v a="$before" -v b="$after" 'BEGIN{split(a,x," "); split(b,y," "); printf "%d HEAD, %d GET, %d pack", y[1]-x[1], y[2]-x[2], y[3]-x[3]}')
    cmp -s "$dir/stat.out" "$dir/read.out" || surprise "$label: the sizes stat gave ($(cat "$dir/stat.out")) are not the bytes read ($(cat "$dir/read.out"))"
    stop_daemon "$pid"
}

declare -A CLONE WALKS STATS READS SREQ RREQ
for leg in direct delayed; do
    if [[ $leg == direct ]]; then url=$MEGA_URL; else url=http://127.0.0.1:$PROXY_PORT; fi
    say "== $leg ($url): git clone x$BENCH_RUNS"
    CLONE[$leg]=$(clone_secs "$url")
    say "== $leg: scorpio walk, stat, read"
    scorpio_run "$leg" "$url"
    WALKS[$leg]=$WALK STATS[$leg]=$STAT READS[$leg]=$READ SREQ[$leg]=$STAT_REQ RREQ[$leg]=$READ_REQ
done

echo
echo "scale_mega: $N_FILES files, $N_DIRS directories, $SNAP_MB MB at /third-party/$NAME; mono $(basename "$MEGA_DIR")/mono"
echo "scorpio: $SCORPIO_BIN ($(scorpio_provenance)); fetch_concurrency $BENCH_CONCURRENCY; load $(loadavg)"
printf '%-22s %12s %12s %12s %12s %14s %14s\n' "" "git clone" "walk" "stat all" "read all" "stat/clone" "read/clone"
for leg in direct delayed; do
    name=$leg; [[ $leg == direct ]] || name="+${BENCH_DELAY_MS} ms per request"
    printf '%-22s %11.2fs %11.2fs %11.2fs %11.2fs %14s %14s\n' "$name" "${CLONE[$leg]}" "${WALKS[$leg]}" \
        "${STATS[$leg]}" "${READS[$leg]}" "$(ratio "${STATS[$leg]}" "${CLONE[$leg]}")" "$(ratio "${READS[$leg]}" "${CLONE[$leg]}")"
done
for leg in direct delayed; do
    echo "$leg: Scorpio's blob requests (its /metrics, finished by then): stat all ${SREQ[$leg]}; read all ${RREQ[$leg]}"
done
exit_with_surprises
