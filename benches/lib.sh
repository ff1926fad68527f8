# benches/lib.sh: helpers shared by the benchmark scripts (sourced, not run).
# They use the caller's $ROOT (the temp root), $SLEEP_FD (a FIFO opened for reading) and
# SURPRISES (an array), and its say().

# Records something that went wrong or looked odd; printed at the end.
surprise() { SURPRISES+=("$*"); say "!! $*"; }

# The filesystem type mounted exactly at $1 (last one wins), or empty. Pure bash, reading only
# /proc (never the mount itself, which may hang): cheap enough to poll in a tight loop.
fstype_at() {
    local want=$1 line found=
    local re='^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ ([^ ]+) .* - ([^ ]+) '
    while IFS= read -r line; do
        if [[ $line =~ $re && ${BASH_REMATCH[1]} == "$want" ]]; then
            found=${BASH_REMATCH[2]}
        fi
    done </proc/self/mountinfo
    printf '%s' "$found"
}

# Every mountpoint under $ROOT (for cleanup).
mounts_under_root() {
    local line re='^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ ([^ ]+) '
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        case ${BASH_REMATCH[1]} in "$ROOT"/*) printf '%s\n' "${BASH_REMATCH[1]}" ;; esac
    done </proc/self/mountinfo
}

# A sleep that forks nothing: read with a timeout on a FIFO nobody writes to.
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

# Seconds from $1 to $2 ($EPOCHREALTIME values).
fsec() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.6f", b-a}'; }
