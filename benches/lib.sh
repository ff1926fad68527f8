# shellcheck shell=bash
# benches/lib.sh: what the benchmark scripts share (sourced, not run: `source "$(dirname
# "${BASH_SOURCE[0]}")/lib.sh"`, after `set -euo pipefail` and the script's knobs).
#
# Sourcing it sets INVOKE_DIR (the caller's directory), REPO_DIR (this repository), BENCH_NAME (the
# script's file name, for messages), SURPRISES=() and the daemon registry, and checks for bash >= 5
# (EPOCHREALTIME). The functions use the caller's ROOT (the temp root, from make_root), BENCH_TIMEOUT
# (seconds for any mount/unmount/daemon wait; 60 when unset), CMD_TIMEOUT (for T) and BENCH_KEEP.

# shellcheck disable=SC2034 # (for the scripts)
INVOKE_DIR=$PWD
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=${BASH_SOURCE[1]:-$0}
BENCH_NAME=${BENCH_NAME##*/}
ROOT=
SURPRISES=()

say() { printf '%s\n' "$*" >&2; }
die() { say "$BENCH_NAME: error: $*"; exit 1; }
# Records something that went wrong or looked odd; printed at the end by exit_with_surprises.
surprise() { SURPRISES+=("$*"); say "!! $*"; }

((BASH_VERSINFO[0] >= 5)) || die "bash >= 5 is needed (EPOCHREALTIME)"

# ------------------------------------------------------------------------------------------ checks
# need_posint <variable names...>: dies unless each holds a positive integer.
need_posint() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer (got '${!v}')"
    done
}
# need_tools <hint> <tools...>: dies naming every tool not on PATH, followed by (<hint>).
need_tools() {
    local hint=$1 t missing=()
    shift
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing tool(s): ${missing[*]} ($hint)"
}
need_fuse() { [[ -e /dev/fuse ]] || die "/dev/fuse does not exist (no FUSE in this kernel/container)"; }

# scorpio_bin <dir>: SCORPIO_BIN made absolute (a relative one is taken from <dir>); by default
# target/release/scorpio of this repository. Checking it is the caller's business.
scorpio_bin() {
    SCORPIO_BIN=${SCORPIO_BIN:-$REPO_DIR/target/release/scorpio}
    [[ $SCORPIO_BIN == /* ]] || SCORPIO_BIN=$1/$SCORPIO_BIN
}
# "built <date>; tree <commit>" of SCORPIO_BIN, saying when src/ has a newer file or the tree is dirty.
scorpio_provenance() {
    local stale='' dirty='' rev
    [[ -d $REPO_DIR/src && -n $(find "$REPO_DIR/src" -newer "$SCORPIO_BIN" -type f -print -quit 2>/dev/null) ]] \
        && stale=", OLDER than some file in src/: rebuild with cargo build --release"
    rev=$(cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null || echo '?')
    [[ -n $(cd "$REPO_DIR" && git status --porcelain --untracked-files=no 2>/dev/null) ]] && dirty=", dirty tree"
    printf 'built %s%s; tree %s%s' "$(date -u -r "$SCORPIO_BIN" +%FT%TZ)" "$stale" "$rev" "$dirty"
}

# ------------------------------------------------------------------------------- temp root, cleanup
# make_root <prefix>: ROOT=$BENCH_TMP/<prefix>.XXXXXX (physical path), and SLEEP_FD for nap.
make_root() {
    mkdir -p "$BENCH_TMP"
    ROOT=$(mktemp -d "$BENCH_TMP/$1.XXXXXX")
    ROOT=$(cd "$ROOT" && pwd -P)
    [[ $ROOT =~ ^[A-Za-z0-9/._+-]+$ ]] || die "temp dir $ROOT has characters this script does not quote for mountinfo; set BENCH_TMP"
    mkfifo "$ROOT/.sleep"
    exec {SLEEP_FD}<>"$ROOT/.sleep"
}
root_device() { df -P "$ROOT" | awk 'NR==2{print $1}'; }
note_disk() {
    if [[ -d /work ]] && [[ $(stat -c %d "$ROOT") != $(stat -c %d /work) ]]; then
        say "note:     the temp root is not on the filesystem of /work; set BENCH_TMP to compare like with like"
    fi
}

# install_cleanup: on exit (and on SIGINT/SIGTERM, as 130/143) stops T's command, calls the
# caller's before_cleanup if defined, stops every registered daemon, unmounts everything under ROOT
# (deepest first), removes ROOT unless BENCH_KEEP=1 or something stayed mounted, then calls
# after_cleanup <exit status> if defined. Never leaves a mount or a daemon behind.
install_cleanup() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
bench_cleanup() {
    local rc=$? m pid
    set +e
    trap - EXIT INT TERM
    [[ -n $CHILD ]] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
    declare -F before_cleanup >/dev/null && before_cleanup
    for pid in "${!DAEMON_WS[@]}"; do stop_daemon "$pid" quiet; done
    if [[ -n $ROOT ]]; then
        cd /
        while read -r m; do
            [[ -n $m ]] && unmount_any "$m"
        done < <(mounts_under_root | sort -r)
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then
            say "kept $ROOT (BENCH_KEEP=1)"
        elif [[ -n $(mounts_under_root) ]]; then
            say "not removing $ROOT: something is still mounted under it: $(mounts_under_root | tr '\n' ' ')"
        else
            timeout 300 rm -rf --one-file-system "$ROOT"
        fi
    fi
    declare -F after_cleanup >/dev/null && after_cleanup "$rc"
    exit "$rc"
}

# T [--stdin FILE] [--log FILE] <cmd...>: runs a command under `timeout` CMD_TIMEOUT, in the
# background while the script waits for it, so that a SIGTERM/SIGINT to the script is handled at
# once (bash defers traps while a foreground child runs) and cleanup can stop the command. Its
# stdin is /dev/null or FILE; with --log its output is appended to FILE.
CHILD=
T() {
    local rc=0 in=/dev/null log=
    if [[ $1 == --stdin ]]; then in=$2; shift 2; fi
    if [[ $1 == --log ]]; then log=$2; shift 2; fi
    if [[ -n $log ]]; then
        timeout -k 10 "$CMD_TIMEOUT" "$@" <"$in" >>"$log" 2>&1 &
    else
        timeout -k 10 "$CMD_TIMEOUT" "$@" <"$in" &
    fi
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=
    return "$rc"
}

# ------------------------------------------------------------------------------------------ mounts
# mount_at <mountpoint> type|fuse-conn: of the mount exactly at <mountpoint> (the last one wins),
# its filesystem type, or its FUSE connection number (the device minor of a 0:N device); empty if
# there is none. Pure bash, reading only /proc (never the mount itself, which may hang): cheap
# enough to poll in a tight loop.
mount_at() {
    local want=$1 line found=''
    local re='^[0-9]+ [0-9]+ ([0-9]+):([0-9]+) [^ ]+ ([^ ]+) .* - ([^ ]+) '
    while IFS= read -r line; do
        [[ $line =~ $re && ${BASH_REMATCH[3]} == "$want" ]] || continue
        case $2 in
        type) found=${BASH_REMATCH[4]} ;;
        fuse-conn) found=''; [[ ${BASH_REMATCH[1]} != 0 ]] || found=${BASH_REMATCH[2]} ;;
        esac
    done </proc/self/mountinfo
    printf '%s' "$found"
}
fstype_at() { mount_at "$1" type; }

# Every mountpoint under $ROOT (for cleanup).
mounts_under_root() {
    local line re='^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ ([^ ]+) '
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        case ${BASH_REMATCH[1]} in "$ROOT"/*) printf '%s\n' "${BASH_REMATCH[1]}" ;; esac
    done </proc/self/mountinfo
}

# Aborts the FUSE connection of the mount at $1 (unsticks processes blocked on a hung daemon).
fuse_abort() {
    local minor
    minor=$(mount_at "$1" fuse-conn)
    [[ -n $minor ]] || return 0
    if [[ ! -d /sys/fs/fuse/connections/$minor ]]; then
        mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
    fi
    if [[ -w /sys/fs/fuse/connections/$minor/abort ]]; then
        echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null || true
    fi
}
# Unmounts $1 whatever it is; lazily and after aborting a FUSE connection if need be. Bounded.
unmount_any() {
    local m=$1 t limit=${BENCH_TIMEOUT:-60}
    t=$(fstype_at "$m")
    [[ -n $t ]] || return 0
    if [[ $t == fuse* ]]; then
        timeout -k 2 "$limit" fusermount3 -u "$m" 2>/dev/null && [[ -z $(fstype_at "$m") ]] && return 0
        fuse_abort "$m"
        timeout -k 2 10 fusermount3 -uz "$m" 2>/dev/null || timeout -k 2 10 umount -l "$m" 2>/dev/null || true
    else
        timeout -k 2 "$limit" umount "$m" 2>/dev/null && [[ -z $(fstype_at "$m") ]] && return 0
        timeout -k 2 10 umount -l "$m" 2>/dev/null || true
    fi
    [[ -z $(fstype_at "$m") ]]
}

# wait_fuse_mount <pid> <dir> <poll seconds>: polls mountinfo (no forks) until a fuse* filesystem
# is mounted at <dir>: 0 then; 1 if <pid> exited first; 2 after BENCH_TIMEOUT seconds.
wait_fuse_mount() {
    local pid=$1 dir=$2 step=$3 deadline=$((${EPOCHREALTIME%.*} + ${BENCH_TIMEOUT:-60}))
    while [[ $(fstype_at "$dir") != fuse* ]]; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((${EPOCHREALTIME%.*} < deadline)) || return 2
        nap "$step"
    done
}

# ------------------------------------------------------------------------------------ processes
# A sleep that forks nothing: read with a timeout on a FIFO nobody writes to (make_root opens it).
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# Waits for our child $1 to exit, at most $2 seconds; sets REAPED to its exit status, or "timeout".
# (Must run in the main shell, not in $(...): only the parent can wait for a child.)
reap() {
    local pid=$1 deadline=$((${EPOCHREALTIME%.*} + $2))
    REAPED=0
    while kill -0 "$pid" 2>/dev/null; do
        if ((${EPOCHREALTIME%.*} > deadline)); then
            REAPED=timeout; return 0
        fi
        nap 0.05
    done
    wait "$pid" 2>/dev/null || REAPED=$?
}

# The daemons started and not yet stopped: pid -> workspace (may be empty), pid -> log file.
declare -A DAEMON_WS=() DAEMON_LOG=()
daemon_started() { DAEMON_WS[$1]=$2 DAEMON_LOG[$1]=$3; }
daemon_forget() { unset "DAEMON_WS[$1]" "DAEMON_LOG[$1]"; }

# stop_daemon <pid> [quiet]: SIGTERM, a wait of at most BENCH_TIMEOUT, then (aborting the FUSE
# connection of its workspace) SIGKILL; then makes sure its workspace is unmounted. Sets REAPED to
# its exit status. Without quiet, a timeout, a non-zero exit or a workspace left mounted is a
# surprise (quiet is for cleanup after an error).
stop_daemon() {
    local pid=$1 mode=${2:-} ws log rc limit=${BENCH_TIMEOUT:-60}
    [[ -n $pid ]] || return 0
    ws=${DAEMON_WS[$pid]:-} log=${DAEMON_LOG[$pid]:-?}
    kill -TERM "$pid" 2>/dev/null || true
    reap "$pid" "$limit"; rc=$REAPED
    if [[ $rc == timeout ]]; then
        [[ $mode == quiet ]] || surprise "scorpio (pid $pid) did not exit within ${limit}s of SIGTERM; sent SIGKILL (workspace ${ws:-none}; log: $log)"
        [[ -z $ws ]] || fuse_abort "$ws"
        kill -KILL "$pid" 2>/dev/null || true
        reap "$pid" 10
    elif [[ $rc != 0 && $mode != quiet ]]; then
        surprise "scorpio (pid $pid) exited with status $rc after SIGTERM (expected 0); log: $log"
    fi
    daemon_forget "$pid"
    if [[ -n $ws && -n $(fstype_at "$ws") ]]; then
        [[ $mode == quiet ]] || surprise "workspace $ws still mounted after scorpio exited; detaching it"
        unmount_any "$ws" || true
    fi
}

# ------------------------------------------------------------------------------------------ scorpio
# A TCP port nobody listens on (from /proc/net/tcp*: no fork of an interpreter).
free_port() {
    local p hex i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        printf -v hex '%04X' "$p"
        if ! awk -v h=":$hex" '$2 ~ h"$" {f=1} END{exit !f}' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            printf '%s' "$p"; return 0
        fi
    done
    die "no free TCP port found"
}

# scorpio_config <file> <remote> <workspace> <store> <port, or empty for no HTTP API> <log_level>
scorpio_config() {
    {
        printf 'remote = "%s"\nworkspace = "%s"\nstore_path = "%s"\n' "$2" "$3" "$4"
        [[ -z $5 ]] || printf 'http_addr = "127.0.0.1:%s"\n' "$5"
        printf 'log_level = "%s"\n' "$6"
    } >"$1"
}

# launch_scorpio <config> <workspace> <log> [args...]: starts SCORPIO_BIN -c <config> [args] in the
# background (stdin /dev/null, output to <log>; with <log> "-", to the caller's stdout and stderr),
# registers it; sets DPID.
launch_scorpio() {
    local cfg=$1 ws=$2 log=$3
    shift 3
    if [[ $log == - ]]; then
        "$SCORPIO_BIN" -c "$cfg" "$@" </dev/null 2>&1 &
    else
        "$SCORPIO_BIN" -c "$cfg" "$@" </dev/null >"$log" 2>&1 &
    fi
    DPID=$!
    daemon_started "$DPID" "$ws" "$log"
}

# api_mount <port> <path> <json file>: POST /api/fs/mount {"path": <path>}, the answer to <json
# file>; retried for ~5 s while the HTTP API is not up yet (it may come a moment after the mount).
# Succeeds on a 200 that says Success; else API_CODE is the HTTP code (or empty) and API_ERR
# curl's message.
api_mount() {
    local port=$1 path=$2 out=$3 i
    API_CODE='' API_ERR=''
    for ((i = 0; i < 50; i++)); do
        API_ERR=$(curl -sS -m "${BENCH_TIMEOUT:-60}" -o "$out" -w '%{http_code}' -X POST \
            "http://127.0.0.1:$port/api/fs/mount" -H 'content-type: application/json' \
            -d "{\"path\":\"$path\"}" 2>&1) && API_CODE=$API_ERR && API_ERR= && break
        nap 0.1
    done
    [[ $API_CODE == 200 ]] && grep -q '"Success"' "$out" 2>/dev/null
}

# ------------------------------------------------------------------------------- repositories, logs
# commit_dir <dir> <message>: <dir> becomes a git repository with all it holds in one commit on main.
commit_dir() {
    git -C "$1" init -q -b main
    git -C "$1" add -A
    git -C "$1" -c user.name=Bench -c user.email=bench@example.com commit -q -m "$2"
}

# log_offset <seconds> <file>: the size of <file> after <seconds>, so that requests still in flight
# (asynchronous ones such as RELEASE) land before it: where the next workload's requests begin.
log_offset() { nap "$1"; stat -c %s "$2"; }

# --------------------------------------------------------------------------------- figures, output
# Seconds from $1 to $2 ($EPOCHREALTIME values), printed with format $3 (%.6f).
fsec() { awk -v a="$1" -v b="$2" -v f="${3:-%.6f}" 'BEGIN{printf f, b-a}'; }
# median <values...> (FAIL if any is FAIL; - if none)
median() {
    printf '%s\n' "$@" | sort -g | awk '
        $0=="" {next}
        $0=="FAIL" {fail=1; next}
        {v[++n]=$0}
        END {
            if (fail) {print "FAIL"; exit}
            if (!n) {print "-"; exit}
            if (n%2) printf "%.6f\n", v[(n+1)/2]; else printf "%.6f\n", (v[n/2]+v[n/2+1])/2
        }'
}
# ratio <a> <b> [format, %.2fx]: a/b, or - when either is missing or FAIL, or b is 0.
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2fx}" 'BEGIN{ if (a=="FAIL"||b=="FAIL"||a=="-"||b=="-"||b+0==0) {print "-"; exit} printf f, a/b }'; }
loadavg() { awk '{print $1" "$2" "$3}' /proc/loadavg; }

# The SURPRISES section, and exit 3, if anything was recorded.
exit_with_surprises() {
    if ((${#SURPRISES[@]})); then
        echo
        echo "SURPRISES:"
        printf '  - %s\n' "${SURPRISES[@]}"
        exit 3
    fi
}
