#!/usr/bin/env bash
# benches/scale.sh: Scorpio over a repository of a million small files, against git on the same disk,
# in one run (issue 15).
#
#   bash benches/scale.sh                          # default: 1,000,000 files, ~10 minutes
#   BENCH_FILES=100000 bash benches/scale.sh       # a tenth, ~1-2 minutes
#
# What it measures (one run each; ratio = scorpio / git):
#   1. generates a bare repo of BENCH_FILES small files, 100 to a directory, 100 directories to a group
#      (gNN/dNN/fNN.txt; 1M files = 100 x 100 x 100), one commit (git fast-import);
#   2. git: `git clone --filter=blob:none --no-checkout file://` + `git ls-tree -r` (what a full
#      walk of a tree fetched with git costs), and a full `git clone` with its checkout;
#   3. scorpio on an empty store: start to first file (`cat` of one file, daemon start included),
#      a cold full walk (`find mnt -type f`), `stat` of every file, reading BENCH_READ files;
#      then the daemon restarted over the filled store: a warm full walk;
#      the daemon's RSS after each, and the store's size (meta.sled, bytes per inode-table entry).
#   4. the Mega part: BENCH_MEGA=1 also runs benches/scale_mega.sh (its own repository, a
#      git.git-like snapshot on the real mono; its own knobs, see its header) and keeps its ratios.
# Exit status: 0, or 3 when something looked wrong (listed under SURPRISES), 1 on errors.
#
# Needs: git, python3, fusermount3, coreutils, findutils, /dev/fuse; run as root or as a plain user
# (then through fusermount3). Builds nothing: it uses ${SCORPIO_BIN:-target/release/scorpio}.
#
# Environment knobs:
#   BENCH_FILES (1000000)  BENCH_READ (10000)  BENCH_TMP (/var/tmp; the disk you care about)
#   BENCH_TIMEOUT (60, seconds for any mount/unmount wait)  BENCH_KEEP (0: keep the temp dir)
#   BENCH_LIST_AHEAD (8: the daemon's list_ahead; 0 to compare)
#   BENCH_MEGA (0)  SCORPIO_BIN (target/release/scorpio, relative to the repository root)
set -euo pipefail
export LC_ALL=C

BENCH_FILES=${BENCH_FILES:-1000000}
BENCH_READ=${BENCH_READ:-10000}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-60}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_MEGA=${BENCH_MEGA:-0}
BENCH_LIST_AHEAD=${BENCH_LIST_AHEAD:-8}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-1800}

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_posint BENCH_FILES BENCH_READ BENCH_TIMEOUT CMD_TIMEOUT
need_tools "install them, e.g. apt-get install fuse3 git python3 coreutils findutils gawk" \
    git python3 fusermount3 timeout xargs find du awk sed wc sort mkfifo mktemp stat date
PY=$(python3 -c 'import sys; print(sys.executable)')
need_fuse
scorpio_bin "$INVOKE_DIR"
[[ -x $SCORPIO_BIN ]] || die "no scorpio binary at $SCORPIO_BIN; build it first: (cd $REPO_DIR && cargo build --release)"

BGPIDS=()
before_cleanup() {
    local pid
    for pid in "${BGPIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
}
install_cleanup
make_root scorpio-scale
LOGDIR=$ROOT/logs
mkdir -p "$LOGDIR"

# rss_mb <pid>: the resident set of a process, in MB.
rss_mb() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo '?'; }
# timed <var> <cmd...>: runs the command under T, its wall time in seconds into <var>.
timed() {
    local var=$1 t0
    shift
    t0=$EPOCHREALTIME
    T "$@"
    printf -v "$var" '%s' "$(fsec "$t0" "$EPOCHREALTIME")"
}
# wait_mount <pid> <workspace>
wait_mount() {
    local pid=$1 ws=$2 rc=0
    wait_fuse_mount "$pid" "$ws" 0.002 || rc=$?
    ((rc != 0)) || return 0
    say "---- daemon log (${DAEMON_LOG[$pid]}) ----"; tail -n 30 "${DAEMON_LOG[$pid]}" >&2
    die "no FUSE mount at $ws (daemon $pid)"
}

say "== scorpio scale benchmark =="
say "binary:   $SCORPIO_BIN ($(scorpio_provenance))"
say "kernel:   $(uname -r); $(nproc) CPUs; temp root: $ROOT ($(root_device))"
note_disk

# ------------------------------------------------------------------------------ 1. generate the repo
BARE=$ROOT/repo.git
GEN=$ROOT/gen.py
cat >"$GEN" <<'PY'
import sys
n = int(sys.argv[1])
w = sys.stdout.buffer.write
w(b"commit refs/heads/main\nauthor Bench <bench@example.com> 1700000000 +0000\n"
  b"committer Bench <bench@example.com> 1700000000 +0000\ndata 12\nscale bench\n\n")
i = g = 0
while i < n:
    for d in range(100):
        for f in range(100):
            if i >= n:
                break
            data = b"file %d of the scale benchmark\n" % i
            w(b"M 100644 inline g%02d/d%02d/f%02d.txt\ndata %d\n%s\n" % (g, d, f, len(data), data))
            i += 1
    g += 1
w(b"done\n")
PY
t0=$EPOCHREALTIME
git init -q --bare -b main "$BARE"
mkfifo "$ROOT/gen.fifo"
"$PY" "$GEN" "$BENCH_FILES" >"$ROOT/gen.fifo" &
BGPIDS+=($!)
T --stdin "$ROOT/gen.fifo" git -C "$BARE" fast-import --quiet
gen_rc=0; wait "${BGPIDS[-1]}" || gen_rc=$?
BGPIDS=()
((gen_rc == 0)) || die "the repository generator failed (status $gen_rc)"
git -C "$BARE" config uploadpack.allowFilter true
say "[1] generated $BENCH_FILES files in $(fsec "$t0" "$EPOCHREALTIME")s"
FIRST=g00/d00/f00.txt
T sync

# --------------------------------------------------------------------------------------- 2. git
timed T_BLOBLESS git clone -q --filter=blob:none --no-checkout "file://$BARE" "$ROOT/blobless"
timed T_LSTREE sh -c "git -C '$ROOT/blobless' ls-tree -r HEAD | wc -l >'$ROOT/lstree.count'"
T_GIT_WALK=$(awk -v a="$T_BLOBLESS" -v b="$T_LSTREE" 'BEGIN{printf "%.6f", a+b}')
[[ $(cat "$ROOT/lstree.count") == "$BENCH_FILES" ]] || surprise "git ls-tree -r listed $(cat "$ROOT/lstree.count") files, expected $BENCH_FILES"
say "[2] blobless clone ${T_BLOBLESS}s + ls-tree -r ${T_LSTREE}s"
timed T_CLONE git clone -q "$BARE" "$ROOT/plain"
T sync
say "    full clone ${T_CLONE}s"

# ------------------------------------------------------------------------------------- 3. scorpio
MNT=$ROOT/mnt STORE=$ROOT/store
mkdir -p "$MNT"
scorpio_config "$ROOT/scale.toml" "$BARE" "$MNT" "$STORE" "" info
printf 'list_ahead = %s\n' "$BENCH_LIST_AHEAD" >>"$ROOT/scale.toml"
T sync
t0=$EPOCHREALTIME
launch_scorpio "$ROOT/scale.toml" "$MNT" "$LOGDIR/cold.log"
PID=$DPID
wait_mount "$PID" "$MNT"
T cat "$MNT/$FIRST" >/dev/null
T_FIRST=$(fsec "$t0" "$EPOCHREALTIME")
R_FIRST=$(rss_mb "$PID")
say "[3] first file ${T_FIRST}s (RSS ${R_FIRST} MB)"

timed T_COLD sh -c "find '$MNT' -type f >'$ROOT/walk.list'"
R_COLD=$(rss_mb "$PID")
N=$(wc -l <"$ROOT/walk.list")
((N == BENCH_FILES)) || surprise "the cold walk found $N files, expected $BENCH_FILES"
say "    cold walk ${T_COLD}s, $N files (RSS ${R_COLD} MB)"

cat >"$ROOT/stat.py" <<'PY'
import os, sys
st = os.stat
for p in open(sys.argv[1]).read().split("\n"):
    if p:
        st(p)
PY
sed "s|^$MNT/|$ROOT/plain/|" "$ROOT/walk.list" >"$ROOT/walk-plain.list"
timed T_STAT "$PY" "$ROOT/stat.py" "$ROOT/walk.list"
R_STAT=$(rss_mb "$PID")
timed T_STAT_PLAIN "$PY" "$ROOT/stat.py" "$ROOT/walk-plain.list"
say "    stat of every file ${T_STAT}s, checkout ${T_STAT_PLAIN}s (RSS ${R_STAT} MB)"

awk -v n="$BENCH_FILES" -v k="$BENCH_READ" 'NR % int((n + k - 1) / k) == 1' "$ROOT/walk.list" | head -n "$BENCH_READ" >"$ROOT/read.list"
sed "s|^$MNT/|$ROOT/plain/|" "$ROOT/read.list" >"$ROOT/read-plain.list"
NREAD=$(wc -l <"$ROOT/read.list")
timed T_READ xargs -d '\n' -a "$ROOT/read.list" cat >/dev/null
R_READ=$(rss_mb "$PID")
timed T_READ_PLAIN xargs -d '\n' -a "$ROOT/read-plain.list" cat >/dev/null
say "    read $NREAD files ${T_READ}s, checkout ${T_READ_PLAIN}s (RSS ${R_READ} MB)"
cmp -s <(xargs -d '\n' -a "$ROOT/read.list" cat) <(xargs -d '\n' -a "$ROOT/read-plain.list" cat) \
    || surprise "the files read through scorpio differ from the checkout's"

stop_daemon "$PID"
DB_BYTES=$(du -sb "$STORE/meta.sled" | awk '{print $1}')
STORE_BYTES=$(du -sb "$STORE" | awk '{print $1}')
# Entries of the inode table: every file and directory, and the root.
ENTRIES=$((BENCH_FILES + $(sort -u <(sed 's|/[^/]*$||' "$ROOT/walk.list") <(sed 's|/[^/]*/[^/]*$||' "$ROOT/walk.list") | wc -l) + 1))
say "    store ${STORE_BYTES} bytes; meta.sled ${DB_BYTES} bytes, $((DB_BYTES / ENTRIES)) bytes per entry ($ENTRIES entries)"

# The same store, the daemon started again: the walk reads the inode table only.
T sync
launch_scorpio "$ROOT/scale.toml" "$MNT" "$LOGDIR/warm.log"
PID=$DPID
wait_mount "$PID" "$MNT"
timed T_WARM sh -c "find '$MNT' -type f | wc -l >'$ROOT/warm.count'"
R_WARM=$(rss_mb "$PID")
[[ $(cat "$ROOT/warm.count") == "$BENCH_FILES" ]] || surprise "the warm walk found $(cat "$ROOT/warm.count") files"
say "    warm walk ${T_WARM}s (RSS ${R_WARM} MB)"
stop_daemon "$PID"
while IFS= read -r l; do surprise "daemon log: $l"; done < <({ grep -E ' (ERROR|WARN) ' "$LOGDIR/cold.log" "$LOGDIR/warm.log" || true; } | head -5)

# ---------------------------------------------------------------------------------- 4. Mega
# The `mega` remote against the real mono: its own script, run apart (its knobs are its own, and
# BENCH_FILES there counts its snapshot's files), its ratio lines kept for the summary.
MEGA_SUMMARY=()
if [[ $BENCH_MEGA == 1 ]]; then
    if out=$(env -u BENCH_FILES bash "$REPO_DIR/benches/scale_mega.sh" 2>&1 | tee "$LOGDIR/mega.out"); then
        while IFS= read -r l; do MEGA_SUMMARY+=("$l"); done < <(grep -E 'clone|x$' <<<"$out" | tail -8)
    else
        surprise "benches/scale_mega.sh failed: see $LOGDIR/mega.out"
    fi
fi

# -------------------------------------------------------------------------------------- summary
echo
echo "== summary: BENCH_FILES=$BENCH_FILES, list_ahead=$BENCH_LIST_AHEAD, $(nproc) CPUs; one run each; ratio = scorpio / git =="
row() { printf '%-34s %-10s %-40s %s\n' "$1" "$2" "$3" "$4"; }
row "start to first file" "${T_FIRST}s" "" "RSS ${R_FIRST} MB"
row "cold walk (find -type f)" "${T_COLD}s" "git blobless clone + ls-tree -r ${T_GIT_WALK}s: $(ratio "$T_COLD" "$T_GIT_WALK")" "RSS ${R_COLD} MB"
row "" "" "full git clone ${T_CLONE}s: $(ratio "$T_COLD" "$T_CLONE")" ""
row "warm walk (restarted daemon)" "${T_WARM}s" "git ls-tree -r ${T_LSTREE}s: $(ratio "$T_WARM" "$T_LSTREE")" "RSS ${R_WARM} MB"
row "stat of every file (after walk)" "${T_STAT}s" "checkout ${T_STAT_PLAIN}s: $(ratio "$T_STAT" "$T_STAT_PLAIN")" "RSS ${R_STAT} MB"
row "read $NREAD files (cold)" "${T_READ}s" "checkout ${T_READ_PLAIN}s: $(ratio "$T_READ" "$T_READ_PLAIN")" "RSS ${R_READ} MB"
row "store: meta.sled" "$((DB_BYTES / 1048576)) MB" "$((DB_BYTES / ENTRIES)) bytes per entry ($ENTRIES entries)" "whole store $((STORE_BYTES / 1048576)) MB"
if ((${#MEGA_SUMMARY[@]})); then printf '%s\n' "${MEGA_SUMMARY[@]}"; fi
exit_with_surprises
