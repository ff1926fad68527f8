#!/usr/bin/env bash
# benches/readonly.sh: a read-only Scorpio mount compared with a plain `git clone` checkout, in one run.
#
#   bash benches/readonly.sh                      # default: 50,000 files (+ wide/ + big/), a few minutes
#   BENCH_FILES=2000 bash benches/readonly.sh     # quick run, well under a minute
#
# What it measures (all on the same disk; ratio = scorpio / plain):
#   1. generates a bare repo: BENCH_FILES small files in directories of ~100, wide/ (exactly 1,000 files),
#      big/blob.bin (BENCH_BIG_MB MB, default 100), one commit on refs/heads/main (git fast-import);
#   2. a plain checkout of that commit (`git clone`), the baseline of 3-5;
#   3. warm stat of 10,000 files (python os.stat loop, hyperfine; the loop alone is also timed inside
#      python), and the same right after `cat` of 1,000 of them: once with their pages still cached,
#      once after dropping their page cache first (fadvise), so that the read reaches the daemon;
#   4. readdir of wide/ (100 x os.listdir in one python process; and one `ls -f` process);
#   5. sequential read of the cached big file (`cat big/blob.bin > /dev/null`);
#   6. start-to-first-read: scorpio with an empty store vs `git clone` vs
#      `git clone --filter=blob:none --sparse file://` + `git sparse-checkout add <dir>` (median of 3);
#   7. (run before 6, on the same mount made writable) status with 10 changes: `git status` in the
#      checkout vs `GET /api/git/status` (curl) and `scorpio status`.
# Then, unless BENCH_COUNT=0, it restarts the daemon over the warm store with rfuse3 debug logging and
# counts the FUSE requests each workload sends, cold and warm (untimed; the timings use log_level=info).
# Exit status: 0, or 3 when something looked wrong (listed under SURPRISES), 1 on errors.
#
# Needs: git, hyperfine, python3, fusermount3, coreutils (timeout, xargs), /dev/fuse; run as root or
# as a plain user (then through fusermount3). Installs nothing and builds nothing: it uses
# ${SCORPIO_BIN:-target/release/scorpio}.
#   BENCH_AS_USER=scorpio-dev bash benches/readonly.sh   # from root: the same run as that user, its
#                                                        # temp dir $BENCH_TMP/scorpio-bench-<user>
#
# Environment knobs:
#   BENCH_FILES (50000)  BENCH_BIG_MB (100)  BENCH_STAT (10000)  BENCH_CAT (1000)  BENCH_RUNS (5)
#   BENCH_FIRST_RUNS (3)  BENCH_TMP (/var/tmp; must be on the same disk as the repo you care about)
#   BENCH_TIMEOUT (60, seconds for any mount/unmount wait)  BENCH_COUNT (1)  BENCH_KEEP (0: keep temp dir)
#   SCORPIO_BIN (target/release/scorpio, relative to the repository root)
set -euo pipefail

# From root, as a plain user (how a developer runs it): the script again under setpriv, with the
# BENCH_* and SCORPIO_BIN knobs and a temp dir of that user's.
if [[ -n ${BENCH_AS_USER:-} && $(id -u) -eq 0 ]]; then
    uid=$(id -u "$BENCH_AS_USER") && gid=$(id -g "$BENCH_AS_USER") || exit 1
    tmp=${BENCH_TMP:-/var/tmp}/scorpio-bench-$BENCH_AS_USER
    mkdir -p "$tmp" && chown "$uid:$gid" "$tmp" && chmod 700 "$tmp"
    knobs=()
    while IFS= read -r kv; do knobs+=("$kv"); done < <(env | grep -E '^(BENCH_[A-Z_]+|SCORPIO_BIN)=' | grep -vE '^BENCH_(TMP|AS_USER)=')
    exec setpriv --reuid="$uid" --regid="$gid" --init-groups env -i HOME="$tmp" USER="$BENCH_AS_USER" \
        PATH=/usr/local/bin:/usr/bin:/bin BENCH_TMP="$tmp" "${knobs[@]}" bash "$0" "$@"
fi
export LC_ALL=C

BENCH_FILES=${BENCH_FILES:-50000}
BENCH_BIG_MB=${BENCH_BIG_MB:-100}
BENCH_STAT=${BENCH_STAT:-10000}
BENCH_CAT=${BENCH_CAT:-1000}
BENCH_WIDE=1000
BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_FIRST_RUNS=${BENCH_FIRST_RUNS:-3}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-60}
BENCH_COUNT=${BENCH_COUNT:-1}
BENCH_KEEP=${BENCH_KEEP:-0}
# A generous bound for any single benchmark command (hyperfine series, clones): never hang forever.
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-900}

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_posint BENCH_FILES BENCH_BIG_MB BENCH_STAT BENCH_CAT BENCH_RUNS BENCH_FIRST_RUNS BENCH_TIMEOUT CMD_TIMEOUT

# ---------------------------------------------------------------------------------------------- tools
need_tools "install them, e.g. apt-get install hyperfine fuse3 git python3 coreutils findutils diffutils gawk" \
    git hyperfine python3 curl fusermount3 timeout xargs cat cmp awk sed grep sort wc df stat mkfifo mktemp dirname date
# The real interpreter: a pyenv/asdf shim would add ~150 ms of startup to every timed python run.
PY=$(python3 -c 'import sys; print(sys.executable)')
[[ -x $PY ]] || die "cannot find the python3 interpreter behind 'python3'"
need_fuse
[[ $(id -u) -eq 0 ]] || say "note: not running as root; the mount relies on fusermount3 and may fail"

scorpio_bin "$INVOKE_DIR"
[[ -x $SCORPIO_BIN ]] || die "no scorpio binary at $SCORPIO_BIN; build it first: (cd $REPO_DIR && cargo build --release)"

# ------------------------------------------------------------------------- processes, mounts, cleanup
BGPIDS=()   # background processes besides T's command (the repository generator)
before_cleanup() {
    local pid
    for pid in "${BGPIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
}
install_cleanup
make_root scorpio-bench
LOGDIR=$ROOT/logs
mkdir -p "$LOGDIR"

declare -A CFG_WS=() CFG_PORT=()
# config_daemon <name> <store> <workspace> <log_level>: writes $ROOT/<name>.toml (free port, empty
# workspace). Kept apart from launch_daemon so that none of this is inside a timed region.
config_daemon() {
    local name=$1 store=$2 ws=$3 level=$4 port
    port=$(free_port)
    mkdir -p "$ws"
    scorpio_config "$ROOT/$name.toml" "$BARE" "$ws" "$store" "$port" "$level"
    CFG_WS[$name]=$ws CFG_PORT[$name]=$port
}
# launch_daemon <name>: starts scorpio on $ROOT/<name>.toml in the background; sets DPID, DPORT.
launch_daemon() {
    launch_scorpio "$ROOT/$1.toml" "${CFG_WS[$1]}" "$LOGDIR/$1.log"
    DPORT=${CFG_PORT[$1]}
}
start_daemon() { config_daemon "$@"; launch_daemon "$1"; }
# wait_mount <pid> <workspace>: waits for the daemon's mount, else dies with its log's tail.
wait_mount() {
    local pid=$1 ws=$2 rc=0
    wait_fuse_mount "$pid" "$ws" 0.002 || rc=$?
    ((rc != 0)) || return 0
    say "---- daemon log (${DAEMON_LOG[$pid]}) ----"; tail -n 30 "${DAEMON_LOG[$pid]}" >&2
    ((rc != 1)) || die "the daemon (pid $pid) exited before mounting $ws"
    die "no FUSE mount at $ws after ${BENCH_TIMEOUT}s"
}

# ------------------------------------------------------------------------------------------ helper.py
H=$ROOT/helper.py
cat >"$H" <<'PY'
import json, os, random, re, stat, statistics, sys, time

def gen(n, big_mb, wide):
    """A git fast-import stream: one commit on refs/heads/main."""
    out = sys.stdout.buffer
    w = out.write
    w(b"commit refs/heads/main\n")
    w(b"author Bench <bench@example.com> 1700000000 +0000\n")
    w(b"committer Bench <bench@example.com> 1700000000 +0000\n")
    msg = b"benchmark tree: %d files, wide/ with %d, big/blob.bin %d MB\n" % (n, wide, big_mb)
    w(b"data %d\n%s\n" % (len(msg), msg))
    rnd = random.Random(20240601)

    def small(path, extra):
        lines = [b"# " + path.encode() + b"\n", extra]
        size = rnd.randint(200, 700)
        body = rnd.randbytes(size // 2).hex().encode()
        lines += [body[i:i + 64] + b"\n" for i in range(0, len(body), 64)]
        return b"".join(lines)

    per_dir, dirs_per_group = 100, 20
    ndirs = (n + per_dir - 1) // per_dir
    i = 0
    for d in range(ndirs):
        g = d // dirs_per_group
        for f in range(per_dir):
            if i >= n:
                break
            path = "src/g%03d/d%03d/f%03d.txt" % (g, d, f)
            data = small(path, b"index %d\n" % i)
            w(b"M 100644 inline %s\ndata %d\n" % (path.encode(), len(data)))
            w(data)
            w(b"\n")
            i += 1
    for f in range(wide):
        path = "wide/w%04d.txt" % f
        data = small(path, b"wide %d\n" % f)
        w(b"M 100644 inline %s\ndata %d\n" % (path.encode(), len(data)))
        w(data)
        w(b"\n")
    size = big_mb * 1024 * 1024
    w(b"M 100644 inline big/blob.bin\ndata %d\n" % size)
    left = size
    while left:
        k = min(left, 1 << 20)
        w(os.urandom(k))
        left -= k
    w(b"\n")
    w(b"done\n")
    out.flush()

def log_loop(logf, dt):
    if logf:
        with open(logf, "a") as f:
            f.write("%.9f\n" % dt)

def cmd_stat(lst, root, logf=None):
    paths = open(lst).read().split("\n")
    paths = [p for p in paths if p]
    os.chdir(root)
    st = os.stat
    t = time.perf_counter()
    for p in paths:
        st(p)
    log_loop(logf, time.perf_counter() - t)

def cmd_evict(lst):
    """Drops the page cache of each (absolute) path in lst, so that the next read goes to the
    filesystem: for the mount, to the daemon (FUSE READ), like a first read."""
    for p in filter(None, open(lst).read().split("\n")):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

def cmd_listdir(d, n, logf=None):
    ld = os.listdir
    t = time.perf_counter()
    for _ in range(int(n)):
        ld(d)
    log_loop(logf, time.perf_counter() - t)

def cmd_verify(lst, catlst, mnt, plain, wide):
    """Same names, types, sizes and exec bits for the stat list; same bytes for the cat list."""
    bad = []
    for p in filter(None, open(lst).read().split("\n")):
        a, b = os.lstat(os.path.join(mnt, p)), os.lstat(os.path.join(plain, p))
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or a.st_size != b.st_size \
                or (a.st_mode & 0o111 != 0) != (b.st_mode & 0o111 != 0):
            bad.append("stat differs: %s (mount mode %o size %d, plain mode %o size %d)"
                       % (p, a.st_mode, a.st_size, b.st_mode, b.st_size))
    for p in filter(None, open(catlst).read().split("\n")):
        with open(os.path.join(mnt, p), "rb") as f1, open(os.path.join(plain, p), "rb") as f2:
            if f1.read() != f2.read():
                bad.append("content differs: " + p)
    a = sorted(os.listdir(os.path.join(mnt, wide)))
    b = sorted(os.listdir(os.path.join(plain, wide)))
    if a != b:
        bad.append("listing of %s differs: %d entries on the mount, %d in the checkout" % (wide, len(a), len(b)))
    for line in bad[:20]:
        print(line)
    if len(bad) > 20:
        print("... and %d more" % (len(bad) - 20))
    sys.exit(1 if bad else 0)

def cmd_hmedian(js):
    print("%.9f" % json.load(open(js))["results"][0]["median"])

def cmd_loopmedian(logf, n):
    vals = [float(x) for x in open(logf).read().split()][-int(n):]
    print("%.9f" % statistics.median(vals))

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OPC = re.compile(r"receive opcode.*?opcode=(FUSE_[A-Z_0-9]+)")

def cmd_count(logf, start):
    """FUSE requests logged by rfuse3 (debug) in logf after byte offset start: 'N (OP a, OP b)'."""
    with open(logf, "rb") as f:
        f.seek(int(start))
        text = f.read().decode("utf-8", "replace")
    counts = {}
    for line in text.splitlines():
        m = OPC.search(ANSI.sub("", line))
        if m:
            op = m.group(1)[5:]
            counts[op] = counts.get(op, 0) + 1
    total = sum(counts.values())
    detail = ", ".join("%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: -kv[1]))
    print("%d%s" % (total, " (%s)" % detail if detail else ""))

def fmt(v):
    v = float(v)
    if v < 0.01:
        return "%.5fs" % v
    if v < 1:
        return "%.4fs" % v
    return "%.3fs" % v

def cmd_summary(tsv):
    rows = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
    w = max(len(r[1]) for r in rows)
    for r in rows:
        kind, label = r[0], r[1]
        if kind == "pair":
            s, p, sl, pl = r[2], r[3], r[4], r[5]
            line = "%-*s  scorpio %-9s plain %-9s ratio %.2fx" % (w, label, fmt(s), fmt(p), float(s) / float(p))
            if sl != "-":
                line += "   [in-process loop only: scorpio %s plain %s ratio %.2fx]" % (
                    fmt(sl), fmt(pl), float(sl) / float(pl))
            print(line)
        elif kind == "first":
            s, c, sp = float(r[2]), float(r[3]), float(r[4])
            print("%-*s  scorpio %s  git clone %s (ratio %.2fx)  sparse blobless clone %s (ratio %.2fx)"
                  % (w, label, fmt(s), fmt(c), s / c, fmt(sp), s / sp))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"gen": lambda: gen(int(args[0]), int(args[1]), int(args[2])),
     "stat": lambda: cmd_stat(*args),
     "listdir": lambda: cmd_listdir(*args),
     "evict": lambda: cmd_evict(*args),
     "verify": lambda: cmd_verify(*args),
     "hmedian": lambda: cmd_hmedian(*args),
     "loopmedian": lambda: cmd_loopmedian(*args),
     "count": lambda: cmd_count(*args),
     "summary": lambda: cmd_summary(*args)}[cmd]()
PY

RESULTS=$ROOT/results.tsv
: >"$RESULTS"

# hf <json> <hyperfine args...>: a hyperfine series, output to the log; aborts with its tail on failure.
hf() {
    local json=$1; shift
    if ! T hyperfine --style basic --export-json "$json" "$@" >>"$LOGDIR/hyperfine.log" 2>&1; then
        tail -n 30 "$LOGDIR/hyperfine.log" >&2
        die "hyperfine failed: $*"
    fi
}

say "== scorpio read-only benchmark =="
say "binary:   $SCORPIO_BIN ($(scorpio_provenance))"
say "kernel:   $(uname -r);  temp root: $ROOT ($(root_device))"
note_disk
say "files:    $BENCH_FILES + wide/ ($BENCH_WIDE) + big/blob.bin (${BENCH_BIG_MB} MB)"
# Some VMs run DAMON with a `pageout` scheme, which evicts page cache that was idle for a few seconds:
# then "warm" is not quite warm (on both sides), and the FUSE side pays READ round trips to refill it.
for k in /sys/kernel/mm/damon/admin/kdamonds/*; do
    [[ -r $k/state && $(cat "$k/state") == on ]] || continue
    if grep -qs pageout "$k"/contexts/*/schemes/*/action; then
        say "note:     DAMON pageout is active ($k): idle page cache gets evicted; expect noisy 'warm' numbers"
    fi
done

# ------------------------------------------------------------------------------ 1. generate the repo
BARE=$ROOT/repo.git
t0=$EPOCHREALTIME
git init -q --bare -b main "$BARE"
mkfifo "$ROOT/gen.fifo"
"$PY" "$H" gen "$BENCH_FILES" "$BENCH_BIG_MB" "$BENCH_WIDE" >"$ROOT/gen.fifo" &
BGPIDS+=($!)
T --stdin "$ROOT/gen.fifo" git -C "$BARE" fast-import --quiet
gen_rc=0; wait "${BGPIDS[-1]}" || gen_rc=$?
BGPIDS=()
((gen_rc == 0)) || die "the repository generator failed (status $gen_rc)"
git -C "$BARE" symbolic-ref HEAD refs/heads/main
git -C "$BARE" config uploadpack.allowFilter true
git -C "$BARE" config uploadpack.allowAnySHA1InWant true
COMMIT=$(git -C "$BARE" rev-parse refs/heads/main)
say "[1] generated $BARE (commit ${COMMIT:0:12}) in $(fsec "$t0" "$EPOCHREALTIME")s"

ALL=$ROOT/all.list STAT_LIST=$ROOT/stat.list CAT_LIST=$ROOT/cat.list
git -C "$BARE" ls-tree -r --name-only refs/heads/main >"$ALL"
NTOTAL=$(wc -l <"$ALL")
awk -v n="$BENCH_STAT" 'NR<=n' "$ALL" >"$STAT_LIST"
awk -v n="$BENCH_CAT" '!/^big\// && c<n {print; c++}' "$STAT_LIST" >"$CAT_LIST"
NSTAT=$(wc -l <"$STAT_LIST") NCAT=$(wc -l <"$CAT_LIST")
# The deep file of part 6: the middle file of src/.
DEEP=$(awk '/^src\//{a[n++]=$0} END{print a[int(n/2)]}' "$ALL")
DEEP_DIR=$(dirname "$DEEP")
((NTOTAL == BENCH_FILES + BENCH_WIDE + 1)) || die "generated repo has $NTOTAL files, expected $((BENCH_FILES + BENCH_WIDE + 1))"

# ---------------------------------------------------------------------------- 2. the plain checkout
PLAIN=$ROOT/plain
t0=$EPOCHREALTIME
T git clone -q "$BARE" "$PLAIN"
# Flush the checkout's dirty pages now, so that writeback does not run under the measurements.
T sync
say "[2] plain checkout at $PLAIN in $(fsec "$t0" "$EPOCHREALTIME")s"

# ----------------------------------------------------------------------------- the scorpio mount
MNT=$ROOT/mnt
start_daemon bench "$ROOT/store" "$MNT" info
BENCH_PID=$DPID
wait_mount "$BENCH_PID" "$MNT"
if ! "$PY" -c 'import sys,urllib.request; r=urllib.request.urlopen(sys.argv[1], timeout=5); sys.exit(0 if r.status==200 else 1)' \
    "http://127.0.0.1:$DPORT/health" 2>/dev/null; then
    surprise "GET http://127.0.0.1:$DPORT/health did not answer 200"
fi
say "    scorpio mounted at $MNT (pid $BENCH_PID)"

# Warm both sides once (this also makes the daemon fetch what is read), then check they agree.
for side in scorpio plain; do
    root=$MNT; [[ $side == plain ]] && root=$PLAIN
    sed "s|^|$root/|" "$CAT_LIST" >"$ROOT/cat-$side.abs"
    T "$PY" "$H" stat "$STAT_LIST" "$root"
    T xargs -d '\n' -a "$ROOT/cat-$side.abs" cat >/dev/null
    T "$PY" "$H" listdir "$root/wide" 1
    T cat "$root/big/blob.bin" >/dev/null
done
if ! T "$PY" "$H" verify "$STAT_LIST" "$CAT_LIST" "$MNT" "$PLAIN" wide >"$ROOT/verify.out"; then
    surprise "the mount does not match the checkout: $(cat "$ROOT/verify.out")"
fi
T cmp -s "$MNT/big/blob.bin" "$PLAIN/big/blob.bin" || surprise "big/blob.bin differs between the mount and the checkout"
T sync

# pair <label> <scorpio json> <plain json> [<scorpio looplog> <plain looplog>]
pair() {
    local label=$1 s p sl=- pl=-
    s=$("$PY" "$H" hmedian "$2") p=$("$PY" "$H" hmedian "$3")
    if [[ -n ${4:-} ]]; then
        sl=$("$PY" "$H" loopmedian "$4" "$BENCH_RUNS") pl=$("$PY" "$H" loopmedian "$5" "$BENCH_RUNS")
    fi
    printf 'pair\t%s\t%s\t%s\t%s\t%s\n' "$label" "$s" "$p" "$sl" "$pl" >>"$RESULTS"
    say "    $label: scorpio $s s, plain $p s (hyperfine medians)"
}

# --------------------------------------------------------------------------------------- 3. stat
# hyperfine -N: no shell around the timed commands (output goes to /dev/null, hyperfine's default).
for side in scorpio plain; do
    root=$MNT; [[ $side == plain ]] && root=$PLAIN
    T "$PY" "$H" stat "$STAT_LIST" "$root"
    hf "$ROOT/stat-$side.json" -N --warmup 1 --runs "$BENCH_RUNS" \
        "$PY -S $H stat $STAT_LIST $root $ROOT/stat-$side.loop"
    # Every run (warm-up included) right after `cat` of $NCAT of the files, their pages already cached.
    hf "$ROOT/statr-$side.json" -N --warmup 1 --runs "$BENCH_RUNS" \
        --prepare "xargs -d '\\n' -a $ROOT/cat-$side.abs cat" \
        "$PY -S $H stat $STAT_LIST $root $ROOT/statr-$side.loop"
    # The same right after a read that really reaches the filesystem (the daemon, on the mount): their
    # page cache is dropped first (fadvise DONTNEED), then `cat` reads them in again.
    hf "$ROOT/statu-$side.json" -N --warmup 1 --runs "$BENCH_RUNS" \
        --prepare "sh -c '$PY -S $H evict $ROOT/cat-$side.abs && xargs -d \"\\n\" -a $ROOT/cat-$side.abs cat'" \
        "$PY -S $H stat $STAT_LIST $root $ROOT/statu-$side.loop"
done
say "[3] stat of $NSTAT files"
pair "stat $NSTAT warm" "$ROOT/stat-scorpio.json" "$ROOT/stat-plain.json" "$ROOT/stat-scorpio.loop" "$ROOT/stat-plain.loop"
pair "stat $NSTAT after cached read" "$ROOT/statr-scorpio.json" "$ROOT/statr-plain.json" "$ROOT/statr-scorpio.loop" "$ROOT/statr-plain.loop"
pair "stat $NSTAT after uncached read" "$ROOT/statu-scorpio.json" "$ROOT/statu-plain.json" "$ROOT/statu-scorpio.loop" "$ROOT/statu-plain.loop"

# ------------------------------------------------------------------------------------ 4. readdir
for side in scorpio plain; do
    root=$MNT; [[ $side == plain ]] && root=$PLAIN
    "$PY" "$H" listdir "$root/wide" 1
    hf "$ROOT/ls-$side.json" -N --warmup 1 --runs "$BENCH_RUNS" \
        "$PY -S $H listdir $root/wide 100 $ROOT/ls-$side.loop"
    hf "$ROOT/lsf-$side.json" -N --warmup 3 --runs $((BENCH_RUNS * 4)) "ls -f $root/wide"
done
say "[4] readdir of wide/ ($BENCH_WIDE entries)"
pair "readdir $BENCH_WIDE x100" "$ROOT/ls-scorpio.json" "$ROOT/ls-plain.json" "$ROOT/ls-scorpio.loop" "$ROOT/ls-plain.loop"
pair "ls -f $BENCH_WIDE (1 process)" "$ROOT/lsf-scorpio.json" "$ROOT/lsf-plain.json"

# -------------------------------------------------------------------------------------- 5. big read
for side in scorpio plain; do
    root=$MNT; [[ $side == plain ]] && root=$PLAIN
    cat "$root/big/blob.bin" >/dev/null
    hf "$ROOT/big-$side.json" -N --warmup 1 --runs "$BENCH_RUNS" "cat $root/big/blob.bin"
done
say "[5] sequential read of big/blob.bin"
pair "read ${BENCH_BIG_MB}MB cached" "$ROOT/big-scorpio.json" "$ROOT/big-plain.json"

# ------------------------------------------------------------------- 7. status with 10 changes
# The whole repository made writable, the same 10 changes (9 files modified across the tree, 1 added)
# on both sides; then `git status` in the checkout against Scorpio's status (over HTTP, and the CLI).
api_mount "$DPORT" / "$LOGDIR/mount-rw.json" \
    || die "POST /api/fs/mount {\"path\":\"/\"} failed (HTTP ${API_CODE:-none}): $(cat "$LOGDIR/mount-rw.json" 2>/dev/null) $API_ERR"
grep -v -e '^big/' -e '^wide/' "$ALL" | awk -v n="$BENCH_FILES" 'NR % int(n / 9) == 1 && c < 9 {print; c++}' >"$ROOT/changed.list"
ADDED=$(dirname "$(head -n 1 "$ROOT/changed.list")")/added-by-bench.txt
for root in "$MNT" "$PLAIN"; do
    while IFS= read -r f; do printf 'changed\n' >>"$root/$f"; done <"$ROOT/changed.list"
    printf 'new\n' >"$root/$ADDED"
done
NCH_GIT=$(git -C "$PLAIN" status --porcelain | wc -l)
NCH_SCORPIO=$("$SCORPIO_BIN" -c "$ROOT/bench.toml" status | wc -l)
((NCH_GIT == 10)) || surprise "git status shows $NCH_GIT changes, expected 10"
((NCH_SCORPIO == 10)) || surprise "scorpio status shows $NCH_SCORPIO changes, expected 10"
hf "$ROOT/st-plain.json" -N --warmup 2 --runs $((BENCH_RUNS * 4)) "git -C $PLAIN status --porcelain"
hf "$ROOT/st-scorpio.json" -N --warmup 2 --runs $((BENCH_RUNS * 4)) "curl -fsS http://127.0.0.1:$DPORT/api/git/status"
hf "$ROOT/stc-scorpio.json" -N --warmup 2 --runs $((BENCH_RUNS * 4)) "$SCORPIO_BIN -c $ROOT/bench.toml status"
say "[7] status with 10 changes on $NTOTAL files"
pair "status, 10 changes (HTTP)" "$ROOT/st-scorpio.json" "$ROOT/st-plain.json"
pair "status, 10 changes (CLI)" "$ROOT/stc-scorpio.json" "$ROOT/st-plain.json"
# Back to read-only, so the request counts below (a restart over this store) are of a read-only
# workspace again; the edits stay in the upper layer, unused.
curl -fsS -X POST -H 'content-type: application/json' -d '{"path":"/"}' \
    "http://127.0.0.1:$DPORT/api/fs/unmount" >/dev/null || surprise "POST /api/fs/unmount {\"path\":\"/\"} failed"

stop_daemon "$BENCH_PID"

# ------------------------------------------------------------------------------ 6. first read
say "[6] start to first read of $DEEP (${BENCH_FIRST_RUNS} runs each)"
FR=$ROOT/first
# Nothing made here is deleted before the end: ext4 allocates new inodes slowly right after many were
# freed (ialloc skips "recently deleted" inodes, ~1 min), which made a `git clone` of 50k files take
# 2 s or 28 s depending on whether the previous clone had just been removed.
mkdir -p "$FR"
EXPECT=$PLAIN/$DEEP
S_T=() C_T=() P_T=()
for ((i = 1; i <= BENCH_FIRST_RUNS; i++)); do
    # (a) scorpio, empty store
    store=$FR/store$i ws=$FR/ws$i out=$FR/out$i
    # Each measurement starts with no dirty data left by the previous one (sync is not timed).
    config_daemon "first$i" "$store" "$ws" info
    T sync
    t0=$EPOCHREALTIME
    launch_daemon "first$i"
    wait_mount "$DPID" "$ws"
    if ! timeout -k 5 "$BENCH_TIMEOUT" cat "$ws/$DEEP" >"$out"; then
        tail -n 30 "${DAEMON_LOG[$DPID]}" >&2
        die "cat $ws/$DEEP failed on a fresh scorpio mount"
    fi
    t1=$EPOCHREALTIME
    S_T+=("$(fsec "$t0" "$t1")")
    cmp -s "$out" "$EXPECT" || surprise "first read through scorpio returned wrong content for $DEEP (run $i)"
    stop_daemon "$DPID"
    rm -f "$out"

    # (b) git clone, then cat
    d=$FR/clone$i
    T sync
    t0=$EPOCHREALTIME
    T git clone -q "$BARE" "$d" && cat "$d/$DEEP" >"$out"
    t1=$EPOCHREALTIME
    C_T+=("$(fsec "$t0" "$t1")")
    cmp -s "$out" "$EXPECT" || surprise "git clone gave wrong content for $DEEP (run $i)"
    rm -f "$out"

    # (c) blobless sparse clone over file://, sparse-checkout add the file's directory, then cat
    d=$FR/sparse$i
    T sync
    t0=$EPOCHREALTIME
    T git clone -q --filter=blob:none --sparse "file://$BARE" "$d" \
        && T git -C "$d" sparse-checkout add "$DEEP_DIR" \
        && cat "$d/$DEEP" >"$out"
    t1=$EPOCHREALTIME
    P_T+=("$(fsec "$t0" "$t1")")
    cmp -s "$out" "$EXPECT" || surprise "sparse blobless clone gave wrong content for $DEEP (run $i)"
    if ((i == 1)); then
        # Check that the filter took effect: only a handful of blobs should be present locally.
        nblobs=$(git -C "$d" cat-file --batch-all-objects --batch-check='%(objecttype)' 2>/dev/null | grep -c '^blob$' || true)
        say "    sparse clone holds $nblobs blobs locally (of $NTOTAL)"
        ((nblobs < NTOTAL / 2)) || surprise "the blobless clone fetched $nblobs blobs: --filter was not honoured"
    fi
    rm -f "$out"
    say "    run $i: scorpio ${S_T[-1]}s  git clone ${C_T[-1]}s  sparse blobless ${P_T[-1]}s"
done
printf 'first\tfirst read %dk repo\t%s\t%s\t%s\n' $(((BENCH_FILES + 500) / 1000)) \
    "$(median "${S_T[@]}")" "$(median "${C_T[@]}")" "$(median "${P_T[@]}")" >>"$RESULTS"

# ------------------------------------------------------------------ FUSE requests of warm workloads
COUNTS=()
if [[ $BENCH_COUNT == 1 ]]; then
    say "[+] counting FUSE requests of each workload (daemon restarted over the warm store, rfuse3 debug log)"
    start_daemon count "$ROOT/store" "$MNT" "info,rfuse3=debug"
    CPID=$DPID CLOG=${DAEMON_LOG[$DPID]}
    wait_mount "$CPID" "$MNT"
    mark() { log_offset 0.3 "$CLOG"; }
    counted() { # <label> <command...>: runs the command, counts the requests it caused
        local label=$1 m; shift
        m=$(mark)
        "$@"
        COUNTS+=("$(printf '%-34s %s' "$label" "$(nap 0.3; "$PY" "$H" count "$CLOG" "$m")")")
    }
    catlist() { xargs -d '\n' -a "$ROOT/cat-scorpio.abs" cat >/dev/null; }
    # A fresh mount (empty page cache) over the warm store: the first pass of each workload is counted
    # too, then the warm ones the timings above are about.
    counted "stat $NSTAT (first after mount)" "$PY" "$H" stat "$STAT_LIST" "$MNT"
    counted "stat $NSTAT (warm)" "$PY" "$H" stat "$STAT_LIST" "$MNT"
    counted "cat $NCAT files (uncached)" catlist
    counted "stat $NSTAT right after that" "$PY" "$H" stat "$STAT_LIST" "$MNT"
    counted "cat $NCAT files (cached)" catlist
    counted "stat $NSTAT right after that" "$PY" "$H" stat "$STAT_LIST" "$MNT"
    counted "os.listdir(wide) (first)" "$PY" "$H" listdir "$MNT/wide" 1
    counted "os.listdir(wide) x100 (warm)" "$PY" "$H" listdir "$MNT/wide" 100
    counted "ls -f wide (warm)" ls -f "$MNT/wide"
    counted "cat big/blob.bin (uncached)" cat "$MNT/big/blob.bin"
    counted "cat big/blob.bin (cached)" cat "$MNT/big/blob.bin"
    stop_daemon "$CPID"
fi > /dev/null

# -------------------------------------------------------------------------------------- summary
echo
echo "== summary: BENCH_FILES=$BENCH_FILES (+$BENCH_WIDE in wide/, + ${BENCH_BIG_MB} MB big/blob.bin); medians; ratio = scorpio / plain =="
"$PY" "$H" summary "$RESULTS"
if ((${#COUNTS[@]})); then
    echo
    echo "FUSE requests sent to the daemon, one pass each, in this order, on a fresh mount over the warm store"
    echo "(counted from the rfuse3 debug log; ideally 0 for every stat and warm listing):"
    printf '  %s\n' "${COUNTS[@]}"
fi
exit_with_surprises
