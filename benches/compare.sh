#!/usr/bin/env bash
# benches/compare.sh: one build workload on four filesystems, in one run, with ratios against native.
#
#   bash benches/compare.sh                     # one round (4 filesystems, each on a fresh mount), ~7 min on 2 cpus
#   BENCH_RUNS=3 bash benches/compare.sh        # three rounds, medians (the order rotates every round)
#   BENCH_FS=native,scorpio bash benches/compare.sh
#
# The filesystems (all on the disk of BENCH_TMP, which should be the disk of /work):
#   native          a plain directory;
#   kernel-ovl      kernel overlayfs: lowerdir = the lower tree, upperdir/workdir on the same disk;
#   fuse-overlayfs  fuse-overlayfs over the same lower tree;
#   scorpio         a git repository whose path work/ holds the same lower tree, mounted by scorpio and
#                   made writable with POST /api/fs/mount {"path":"work"}.
# Each starts from the same lower tree (a few hundred small files, see "lower tree" below), so that the
# workload also goes through copy-up, whiteouts and merged directories.
#
# The workload, timed phase by phase (wall clock), in the writable directory:
#   untar    tar -xf of libgit2's source tree (the copy vendored by the libgit2-sys crate in the cargo
#            registry: ~680 files, ~9 MB), over the lower tree, which already has some of its paths;
#   build    make -jBENCH_JOBS: libgit2 (static library) and its CLI `git2`, compiled with cc from a
#            Makefile this script writes (the way libgit2-sys's build.rs builds it: no cmake needed);
#            ~230 objects, all written under libgit2/build/ inside the mount;
#   find+du  find . -type f | wc -l; du -s .
#   rm -rf   rm -rf libgit2/build (which also holds a few files of the lower tree: whiteouts).
# Two tables: wall-clock seconds, and CPU seconds (user+sys of the phase's processes plus the FUSE
# daemon's), the latter being much less disturbed by other load on a shared machine.
# Not timed, after each phase: sync; and checks: `tar -d` (the extracted tree equals the tarball), file
# counts (equal on all four filesystems and to the count expected from the two file lists), the built
# library and binary are byte-identical on all four, and the built `git2 hash-object` agrees with git.
#
# Exit status: 0; 3 when something failed or looked wrong (listed under SURPRISES); 1 on errors.
#
# Needs (checked up front; nothing is installed): tar, cc, make, ar, git, curl, fuse-overlayfs,
# fusermount3, mount/umount with overlayfs, /dev/fuse, coreutils/findutils/awk; root.
# Uses $SCORPIO_BIN (default: target/release/scorpio of this repository; a relative SCORPIO_BIN is
# taken from the current directory), and runs `cargo build --release` only when that binary is absent.
# Scorpio runs with log_level SCORPIO_LOG_LEVEL (info). All logs (daemon, each phase's output) go to
# BENCH_TMP/scorpio-compare-logs.*, which is kept when anything failed or looked wrong, else removed.
#
# Environment knobs:
#   BENCH_RUNS (1)  BENCH_FS (native,kernel-ovl,fuse-overlayfs,scorpio)  BENCH_JOBS (2: make -j)
#   BENCH_LOWER_FILES (300: extra small lower files, besides the ~210 that overlap the tarball)
#   BENCH_TMP (/var/tmp)  BENCH_TIMEOUT (60 s: mount/unmount/daemon waits)
#   BENCH_CMD_TIMEOUT (1800 s: any one timed phase)  BENCH_KEEP (0; 1 keeps the temp root)
#   BENCH_SRC (libgit2 source dir; default: the newest libgit2-sys-*/libgit2 in the cargo registry)
#   BENCH_COUNT (1): afterwards, one more untimed pass on scorpio (rfuse3 debug log) and on fuse-overlayfs
#     (-d) that counts the FUSE requests of each phase, by opcode; 0 skips it
#   SCORPIO_BIN  SCORPIO_LOG_LEVEL (info)
# shellcheck disable=SC2016 # ('... "$1" ...' are scripts for bash -c, with their arguments)
set -euo pipefail
export LC_ALL=C

BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_FS=${BENCH_FS:-native,kernel-ovl,fuse-overlayfs,scorpio}
BENCH_JOBS=${BENCH_JOBS:-2}
BENCH_LOWER_FILES=${BENCH_LOWER_FILES:-300}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-60}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-1800}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_COUNT=${BENCH_COUNT:-1}
SCORPIO_LOG_LEVEL=${SCORPIO_LOG_LEVEL:-info}

# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_posint BENCH_RUNS BENCH_JOBS BENCH_LOWER_FILES BENCH_TIMEOUT CMD_TIMEOUT
ALL_FS=(native kernel-ovl fuse-overlayfs scorpio)
FS_LIST=()
IFS=', ' read -r -a _want <<<"$BENCH_FS"
for f in "${ALL_FS[@]}"; do
    for w in "${_want[@]}"; do [[ $w == "$f" ]] && FS_LIST+=("$f"); done
done
for w in "${_want[@]}"; do
    [[ " ${ALL_FS[*]} " == *" $w "* ]] || die "BENCH_FS: unknown filesystem '$w' (known: ${ALL_FS[*]})"
done
((${#FS_LIST[@]})) || die "BENCH_FS selects no filesystem"
want_fs() { [[ " ${FS_LIST[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------- tools
tools=(tar cc make ar git timeout find du wc awk sed sort comm sha1sum cmp mktemp sync mount umount cp tail getconf)
want_fs fuse-overlayfs && tools+=(fuse-overlayfs fusermount3 pgrep)
want_fs scorpio && tools+=(curl fusermount3)
# cmake is not used (libgit2 is built with a generated Makefile); say so when it is absent, as a note.
command -v cmake >/dev/null 2>&1 || say "note: cmake is not installed; not needed (libgit2 is built with a generated Makefile)"
need_tools "this script installs nothing; e.g. apt-get install build-essential git curl fuse3 fuse-overlayfs" "${tools[@]}"
[[ $(id -u) -eq 0 ]] || die "run as root: kernel overlayfs needs mount(2), and the FUSE mounts /dev/fuse"
if want_fs fuse-overlayfs || want_fs scorpio; then
    need_fuse
fi
if want_fs kernel-ovl && ! grep -qw overlay /proc/filesystems; then
    modprobe overlay 2>/dev/null || true
    grep -qw overlay /proc/filesystems || die "the kernel has no overlayfs (not in /proc/filesystems; modprobe overlay failed)"
fi

# The C project: libgit2, as vendored by libgit2-sys (a dependency of this project).
if [[ -z ${BENCH_SRC:-} ]]; then
    _reg=${CARGO_HOME:-$HOME/.cargo}/registry/src
    # shellcheck disable=SC2012 # (sort -V: the newest version)
    BENCH_SRC=$(ls -d "$_reg"/*/libgit2-sys-*/libgit2 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n $BENCH_SRC ]] || die "no libgit2-sys-*/libgit2 under $_reg; run 'cargo fetch' in $REPO_DIR or set BENCH_SRC"
fi
[[ $BENCH_SRC = /* ]] || BENCH_SRC=$INVOKE_DIR/$BENCH_SRC
[[ -f $BENCH_SRC/src/libgit2/repository.c && -f $BENCH_SRC/deps/zlib/deflate.c && -d $BENCH_SRC/src/cli ]] \
    || die "$BENCH_SRC does not look like libgit2's source tree (with deps/zlib and src/cli)"

if want_fs scorpio; then
    scorpio_bin "$INVOKE_DIR"
    if [[ ! -x $SCORPIO_BIN ]]; then
        command -v cargo >/dev/null 2>&1 || die "no scorpio binary at $SCORPIO_BIN and no cargo to build it"
        say "no scorpio binary at $SCORPIO_BIN: building it (cargo build --release) ..."
        (cd "$REPO_DIR" && timeout "$CMD_TIMEOUT" cargo build --release) >&2 || die "cargo build --release failed"
        [[ -x $SCORPIO_BIN ]] || die "cargo build --release did not produce $SCORPIO_BIN"
    fi
fi

# ------------------------------------------------------------------------- processes, mounts, cleanup
# The scorpio daemon of the current filesystem, its log; fuse-overlayfs -d of a counting pass; the
# file a counting pass logs requests to.
DPID='' DLOG='' FOPID='' COUNT_FILE=''
LOGDIR=
before_cleanup() { [[ -z $FOPID ]] || kill -TERM "$FOPID" 2>/dev/null; }
after_cleanup() {
    if [[ -n $LOGDIR && -d $LOGDIR ]]; then
        if [[ $1 != 0 || ${#SURPRISES[@]} -gt 0 || $BENCH_KEEP == 1 ]]; then
            say "logs kept in $LOGDIR"
        else
            rm -rf "$LOGDIR"
        fi
    fi
}
install_cleanup
make_root scorpio-compare
chmod 755 "$ROOT"
# The logs live beside the temp root, so that they can be kept when something went wrong.
LOGDIR=$(mktemp -d "$BENCH_TMP/scorpio-compare-logs.XXXXXX")

fmt() { awk -v t="$1" 'BEGIN{ if (t !~ /^[0-9.]+$/) {print t; exit}
                            if (t<1) printf "%.3fs", t; else if (t<10) printf "%.2fs", t; else if (t<100) printf "%.1fs", t; else printf "%.0fs", t }'; }

say "== scorpio compare: untar + build + find/du + rm of libgit2 on ${FS_LIST[*]} =="
say "kernel:   $(uname -r);  cpus: $(nproc);  temp root: $ROOT ($(root_device))"
note_disk
say "source:   $BENCH_SRC"
say "compiler: $(cc --version | head -n 1);  make -j$BENCH_JOBS"
want_fs fuse-overlayfs && say "fuse-overlayfs: $(fuse-overlayfs --version 2>&1 | awk '/fuse-overlayfs: version/{print $3}')"
want_fs scorpio && say "scorpio:  $SCORPIO_BIN ($(scorpio_provenance)); log_level $SCORPIO_LOG_LEVEL"
LOAD_START=$(loadavg)
say "load:     $LOAD_START (1/5/15 min) at start; this machine may be shared: expect noise"

# ------------------------------------------------------------------------------ inputs (not timed)
# The tarball: libgit2's directory as it is, members libgit2/...
TAR=$ROOT/libgit2.tar
SRC_PARENT=$(dirname "$BENCH_SRC") SRC_NAME=$(basename "$BENCH_SRC")
tar -C "$SRC_PARENT" -cf "$TAR" --transform "s,^$SRC_NAME,libgit2," "$SRC_NAME"
tar -tf "$TAR" | sed -n '/\/$/!p' | sort >"$ROOT/tar.files"
NTAR=$(wc -l <"$ROOT/tar.files")
cat "$TAR" >/dev/null   # in the page cache for every filesystem alike

# The lower tree: the same on all four filesystems.
#   libgit2/include/**, libgit2/deps/**: paths the tarball also has (content altered, so that a stale
#     lower file showing through after tar -x is caught by tar -d); tar unlinks and recreates them;
#   libgit2/build/stale/*: lower files inside the build directory that rm -rf removes;
#   notes/dNN/fNNN.txt: BENCH_LOWER_FILES small files the workload never touches.
LOWER=$ROOT/lower
mkdir -p "$LOWER/libgit2"
cp -a "$BENCH_SRC/include" "$BENCH_SRC/deps" "$LOWER/libgit2/"
find "$LOWER/libgit2" -type f -exec sh -c 'for f; do printf "\n/* lower layer copy */\n" >>"$f"; done' _ {} +
mkdir -p "$LOWER/libgit2/build/stale"
for i in $(seq -w 1 20); do printf 'stale build file %s\n' "$i" >"$LOWER/libgit2/build/stale/s$i.txt"; done
for ((i = 0; i < BENCH_LOWER_FILES; i++)); do
    d=$LOWER/notes/d$(printf %02d $((i / 30)))
    [[ -d $d ]] || mkdir -p "$d"
    printf 'note %d\n%s\n' "$i" "$(printf 'line of lower content %d\n' $(seq 1 $((i % 7 + 1))))" >"$d/f$(printf %03d "$i").txt"
done
chmod -R u=rwX,go=rX "$LOWER"
(cd "$LOWER" && find . -type f | sed 's,^\./,,' | sort) >"$ROOT/lower.files"
NLOWER=$(wc -l <"$ROOT/lower.files")
NSTALE=$(grep -c '^libgit2/build/' "$ROOT/lower.files" || true)
NOVERLAP=$(comm -12 "$ROOT/lower.files" "$ROOT/tar.files" | wc -l)
EXP_UNTAR=$(sort -u "$ROOT/lower.files" "$ROOT/tar.files" | wc -l)
EXP_RM=$((EXP_UNTAR - NSTALE))
say "inputs:   tarball $NTAR files ($(du -sh "$TAR" | cut -f1)); lower tree $NLOWER files ($NOVERLAP also in the tarball, $NSTALE under libgit2/build/)"

# The Makefile (outside the mount; objects go to build/ under make's -C directory, i.e. inside it).
MK=$ROOT/libgit2.mk
cat >"$MK" <<'EOF'
# libgit2 (static library) and its CLI `git2`, without cmake, the way libgit2-sys's build.rs does it.
O      := build
CC     ?= cc
AR     ?= ar
CFLAGS := -O2 -g0 -w -fvisibility=hidden -pthread
INC    := -Iinclude -I$(O)/gen -Isrc/libgit2 -Isrc/util -Isrc/cli -Ideps/llhttp -Ideps/xdiff -Ideps/pcre2 -Ideps/zlib
DEFS   := -DGIT_REGEX_BUILTIN=1 -DPCRE2_STATIC -DPCRE2_EXPORT= -DPCRE2_EXP_DECL= -DPCRE2_EXP_DEFN= \
          -DPCRE2_CODE_UNIT_WIDTH=8 -DSUPPORT_PCRE2_8=1 -DSUPPORT_UNICODE=1 -DLINK_SIZE=2 \
          -DHEAP_LIMIT=20000000 -DMATCH_LIMIT=10000000 -DMATCH_LIMIT_DEPTH=MATCH_LIMIT \
          -DMAX_VARLOOKBEHIND=255 -DNEWLINE_DEFAULT=2 -DPARENS_NEST_LIMIT=250 -DMAX_NAME_SIZE=128 \
          -DMAX_NAME_COUNT=10000 -DSHA1DC_NO_STANDARD_INCLUDES=1 \
          '-DSHA1DC_CUSTOM_INCLUDE_SHA1_C="git2_util.h"' '-DSHA1DC_CUSTOM_INCLUDE_UBC_CHECK_C="git2_util.h"' \
          -DNO_VIZ -DSTDC -DNO_GZIP -DHAVE_SYS_TYPES_H -DHAVE_STDINT_H -DHAVE_STDDEF_H
PCRE2  := auto_possess chartables chkdint compile compile_cgroup compile_class config context convert \
          dfa_match error extuni find_bracket maketables match match_data match_next newline ord2utf \
          pattern_info script_run serialize string_utils study substitute substring tables ucd \
          valid_utf xclass
LIBSRC := $(sort $(wildcard src/libgit2/*.c src/libgit2/transports/*.c src/libgit2/streams/*.c \
            src/util/*.c src/util/unix/*.c deps/llhttp/*.c deps/xdiff/*.c deps/zlib/*.c)) \
          src/util/allocators/failalloc.c src/util/allocators/stdalloc.c \
          src/util/hash/collisiondetect.c src/util/hash/sha1dc/sha1.c src/util/hash/sha1dc/ubc_check.c \
          src/util/hash/builtin.c src/util/hash/rfc6234/sha224-256.c \
          $(patsubst %,deps/pcre2/pcre2_%.c,$(PCRE2))
CLISRC := $(sort $(wildcard src/cli/*.c src/cli/unix/*.c))
LIBOBJ := $(patsubst %.c,$(O)/obj/%.o,$(LIBSRC))
CLIOBJ := $(patsubst %.c,$(O)/obj/%.o,$(CLISRC))
FEAT   := $(O)/gen/git2_features.h

all: $(O)/git2
$(O)/git2: $(CLIOBJ) $(O)/libgit2.a
	$(CC) $(CFLAGS) -o $@ $(CLIOBJ) $(O)/libgit2.a -lpthread
$(O)/libgit2.a: $(LIBOBJ)
	rm -f $@
	$(AR) rcsD $@ $^
$(O)/obj/%.o: %.c $(FEAT)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEFS) $(INC) -c -o $@ $<
$(FEAT):
	@mkdir -p $(@D)
	printf '%s\n' '#ifndef INCLUDE_features_h__' '#define INCLUDE_features_h__' \
	  '#define GIT_THREADS 1' '#define GIT_TRACE 1' '#define GIT_ARCH_64 1' '#define GIT_USE_NSEC 1' \
	  '#define GIT_USE_STAT_MTIM 1' '#define GIT_USE_FUTIMENS 1' '#define GIT_REGEX_BUILTIN 1' \
	  '#define GIT_QSORT_GNU' '#define GIT_HTTPPARSER_BUILTIN 1' '#define GIT_SHA1_COLLISIONDETECT 1' \
	  '#define GIT_SHA256_BUILTIN 1' '#define GIT_COMPRESSION_BUILTIN 1' '#define GIT_IO_POLL 1' \
	  '#define GIT_IO_SELECT 1' '#define GIT_RAND_GETLOADAVG 1' '#endif' > $@
.PHONY: all
EOF
README_OID=$(git hash-object "$BENCH_SRC/README.md")

# The scorpio repository: work/ holds the lower tree.
if want_fs scorpio; then
    REPO=$ROOT/repo
    mkdir -p "$REPO"
    cp -a "$LOWER" "$REPO/work"
    commit_dir "$REPO" "lower tree for compare.sh"
    [[ $(git -C "$REPO" ls-files | wc -l) == "$NLOWER" ]] || die "the scorpio repository does not hold all $NLOWER lower files"
fi
sync

# -------------------------------------------------------------------------- filesystem set-up/teardown
# setup_fs <fs> <dir>: makes <dir> and mounts/prepares the filesystem there; sets WD (the writable
# directory holding the lower tree). Returns non-zero (after a surprise) if it could not.
setup_fs() {
    local fs=$1 d=$2 t port level rc=0
    FS_DAEMON_PID=
    mkdir -p "$d"
    case $fs in
    native)
        cp -a "$LOWER" "$d/ws"
        WD=$d/ws
        ;;
    kernel-ovl)
        mkdir -p "$d/upper" "$d/work" "$d/merged"
        if ! timeout "$BENCH_TIMEOUT" mount -t overlay overlay \
            -o "lowerdir=$LOWER,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>"$LOGDIR/$RUNTAG-mount.log"; then
            surprise "kernel overlayfs mount failed: $(tail -n 3 "$LOGDIR/$RUNTAG-mount.log")"
            return 1
        fi
        WD=$d/merged
        ;;
    fuse-overlayfs)
        mkdir -p "$d/upper" "$d/work" "$d/merged"
        if [[ -n $COUNT_FILE ]]; then
            # -d: libfuse's request log, in the foreground; only the opcodes are kept.
            fuse-overlayfs -d -o "lowerdir=$LOWER,upperdir=$d/upper,workdir=$d/work" "$d/merged" </dev/null \
                > >(grep --line-buffered -oE 'opcode: [A-Z_0-9]+' | sed -u 's/^opcode: //' >"$COUNT_FILE") 2>&1 &
            FOPID=$!
            wait_fuse_mount "$FOPID" "$d/merged" 0.01 || { surprise "fuse-overlayfs -d did not mount $d/merged"; return 1; }
        elif ! timeout "$BENCH_TIMEOUT" fuse-overlayfs \
            -o "lowerdir=$LOWER,upperdir=$d/upper,workdir=$d/work" "$d/merged" >"$LOGDIR/$RUNTAG-mount.log" 2>&1; then
            surprise "fuse-overlayfs mount failed: $(tail -n 3 "$LOGDIR/$RUNTAG-mount.log")"
            return 1
        fi
        [[ $(fstype_at "$d/merged") == fuse* ]] || { surprise "fuse-overlayfs returned but nothing is mounted at $d/merged"; return 1; }
        FS_DAEMON_PID=$FOPID
        if [[ -z $FS_DAEMON_PID ]]; then
            # it daemonized: find it by its mountpoint argument
            for t in $(pgrep -x fuse-overlayfs || true); do
                tr '\0' '\n' <"/proc/$t/cmdline" 2>/dev/null | grep -qxF "$d/merged" && FS_DAEMON_PID=$t
            done
            [[ -n $FS_DAEMON_PID ]] || say "    note: fuse-overlayfs's pid not found: its CPU time is not counted"
        fi
        WD=$d/merged
        ;;
    scorpio)
        mkdir -p "$d/ws" "$d/store"
        port=$(free_port)
        level=$SCORPIO_LOG_LEVEL
        [[ -n $COUNT_FILE ]] && level="info,rfuse3=debug"
        scorpio_config "$d/scorpio.toml" "$REPO" "$d/ws" "$d/store" "$port" "$level"
        if [[ -n $COUNT_FILE ]]; then
            # rfuse3's debug log is ~1.5 kB per request: keep only the opcodes, what lookups answered
            # (an entry, with its nodeid: 0 is a cacheable negative entry) and warnings/errors.
            DLOG=$COUNT_FILE
            launch_scorpio "$d/scorpio.toml" "$d/ws" - \
                > >(grep --line-buffered -oE 'opcode=FUSE_[A-Z_0-9]+|lookup response fuse_entry_out \{ nodeid: [0-9]+| (WARN|ERROR) .*' \
                    >"$COUNT_FILE")
            daemon_started "$DPID" "$d/ws" "$DLOG"   # (the log to name in messages)
        else
            DLOG=$LOGDIR/$RUNTAG-scorpio.log
            launch_scorpio "$d/scorpio.toml" "$d/ws" "$DLOG"
        fi
        wait_fuse_mount "$DPID" "$d/ws" 0.01 || rc=$?
        if ((rc == 1)); then
            reap "$DPID" 1
            surprise "scorpio exited (status $REAPED) before mounting $d/ws; log $DLOG: $(tail -n 5 "$DLOG" | tr '\n' ' ')"
            daemon_forget "$DPID"
            DPID=
            return 1
        elif ((rc != 0)); then
            surprise "no FUSE mount at $d/ws ${BENCH_TIMEOUT}s after starting scorpio; log $DLOG"
            return 1
        fi
        if ! api_mount "$port" work "$d/mount.json"; then
            surprise "POST /api/fs/mount {\"path\":\"work\"} failed (HTTP ${API_CODE:-none}): $(cat "$d/mount.json" 2>/dev/null) $API_ERR"
            return 1
        fi
        WD=$d/ws/work
        FS_DAEMON_PID=$DPID
        ;;
    esac
    timeout -k 2 "$BENCH_TIMEOUT" test -d "$WD" || { surprise "$fs: the writable directory $WD does not exist"; return 1; }
    return 0
}

teardown_fs() {
    local fs=$1 d=$2
    FS_DAEMON_PID=
    case $fs in
    native) ;;
    kernel-ovl | fuse-overlayfs)
        unmount_any "$d/merged" || surprise "$fs: could not unmount $d/merged"
        if [[ -n $FOPID ]]; then
            reap "$FOPID" "$BENCH_TIMEOUT"
            [[ $REAPED == timeout ]] && { kill -KILL "$FOPID" 2>/dev/null; reap "$FOPID" 5; }
            FOPID=
        fi
        ;;
    scorpio)
        [[ -n $DPID ]] && ! kill -0 "$DPID" 2>/dev/null && surprise "scorpio (pid $DPID) died during the workload; log $DLOG"
        stop_daemon "$DPID"
        DPID=
        if [[ -z $COUNT_FILE && -f $DLOG ]]; then
            local nw ne
            nw=$(grep -c ' WARN ' "$DLOG" || true) ne=$(grep -c ' ERROR ' "$DLOG" || true)
            ((ne == 0)) || surprise "scorpio logged $ne ERROR line(s) ($DLOG), e.g.: $(grep -m 2 ' ERROR ' "$DLOG" | cut -c1-300 | tr '\n' '|')"
            ((nw == 0)) || say "    note: scorpio logged $nw WARN line(s) ($DLOG), e.g.: $(grep -m 1 ' WARN ' "$DLOG" | cut -c1-200)"
        fi
        ;;
    esac
}

# -------------------------------------------------------------------------------------- the workload
declare -A RES=() NFILES=() DUS=() SUMS=() LOADS=() DCPU=()
PHASES=(untar build find+du rm-rf)

# CPU time, which other load on the machine disturbs less than wall-clock time: the user+sys time of
# the phase's processes (this shell's reaped children, from bash's `times`: no fork), plus that of
# the filesystem's daemon (scorpio, fuse-overlayfs) from /proc/<pid>/stat. Kernel overlayfs work is
# in the processes' sys time.
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
FS_DAEMON_PID=
daemon_ticks() {
    local line f
    [[ -n $FS_DAEMON_PID && -r /proc/$FS_DAEMON_PID/stat ]] || { printf 0; return 0; }
    read -r line </proc/"$FS_DAEMON_PID"/stat || { printf 0; return 0; }
    line=${line##*) }
    read -r -a f <<<"$line"
    printf '%s' $((f[11] + f[12]))
}
# cpu_secs <times-before> <times-after> <daemon ticks before> <daemon ticks after>
cpu_secs() {
    awk -v hz="$CLK_TCK" -v d0="$3" -v d1="$4" '
        function sec(x,   m) { m = x; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); return m * 60 + x }
        FNR == 2 { t = sec($1) + sec($2); if (NR == FNR) a = t; else b = t }
        END { printf "%.6f", b - a + (d1 - d0) / hz }' "$1" "$2"
}

# phase <fs> <run> <name> <cmd...>: times one phase; records seconds or FAIL. Returns the command's status.
phase() {
    local fs=$1 run=$2 name=$3 t0 t1 rc=0 log d0 d1
    shift 3
    log=$LOGDIR/$RUNTAG-$name.log
    : >"$log"
    d0=$(daemon_ticks)
    times >"$ROOT/.times0"
    t0=$EPOCHREALTIME
    T --log "$log" "$@" || rc=$?
    t1=$EPOCHREALTIME
    times >"$ROOT/.times1"
    d1=$(daemon_ticks)
    if ((rc == 0)); then
        RES[$fs,$name,$run]=$(fsec "$t0" "$t1")
        RES[cpu:$fs,$name,$run]=$(cpu_secs "$ROOT/.times0" "$ROOT/.times1" "$d0" "$d1")
        [[ -n $FS_DAEMON_PID ]] && DCPU[$fs,$name,$run]=$(awk -v a="$d0" -v b="$d1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2fs", (b-a)/hz}')
    else
        RES[$fs,$name,$run]=FAIL RES[cpu:$fs,$name,$run]=FAIL
        local why="exit status $rc"
        ((rc == 124 || rc == 137)) && why="timed out after ${CMD_TIMEOUT}s (hang?)"
        surprise "$fs (run $run): phase '$name' failed: $why; log $log; last lines: $(tail -n 8 "$log" | tr '\n' '|')"
    fi
    return "$rc"
}

count_files() { (cd "$1" && timeout -k 5 "$CMD_TIMEOUT" find . -type f | wc -l); }

# check_count <fs> <run> <stage> <dir> <expected>
check_count() {
    local fs=$1 run=$2 stage=$3 n
    n=$(count_files "$4" 2>>"$LOGDIR/$RUNTAG-check.log") || n="?"
    NFILES[$fs,$stage,$run]=$n
    [[ $n == "$5" ]] || surprise "$fs (run $run): after $stage, $n files (find -type f), expected $5"
}

run_workload() {
    local fs=$1 run=$2 d=$3 n sums la0 la1 line msg
    la0=$(loadavg)
    # 1. untar
    phase "$fs" "$run" untar bash -c 'cd "$1" && tar -xf "$2"' _ "$WD" "$TAR" || return 0
    T --log "$LOGDIR/$RUNTAG-check.log" sync || true
    if ! (cd "$WD" && timeout -k 5 "$CMD_TIMEOUT" tar -df "$TAR") >"$LOGDIR/$RUNTAG-tardiff.log" 2>&1; then
        surprise "$fs (run $run): the extracted tree differs from the tarball (tar -d): $(head -n 5 "$LOGDIR/$RUNTAG-tardiff.log" | tr '\n' '|')"
    fi
    check_count "$fs" "$run" untar "$WD" "$EXP_UNTAR"
    # 2. build
    if phase "$fs" "$run" build make -C "$WD/libgit2" -f "$MK" -j"$BENCH_JOBS"; then
        T --log "$LOGDIR/$RUNTAG-check.log" sync || true
        sums=$(cd "$WD/libgit2/build" && timeout -k 5 "$BENCH_TIMEOUT" sha1sum libgit2.a git2 2>&1 | awk '{print $1}' | tr '\n' ' ') || true
        SUMS[$fs,$run]=$sums
        n=$(count_files "$WD/libgit2/build" 2>/dev/null) || n="?"
        NFILES[$fs,buildout,$run]=$n
        msg=$(cd "$WD/libgit2" && timeout 30 build/git2 hash-object README.md 2>&1) || true
        [[ $msg == "$README_OID" ]] || surprise "$fs (run $run): the built git2 hash-object README.md gave '$msg', git says $README_OID"
    fi
    # 3. find + du
    phase "$fs" "$run" find+du bash -c 'cd "$1" && find . -type f | wc -l && du -s .' _ "$WD" || true
    line=$(tr '\n' ' ' <"$LOGDIR/$RUNTAG-find+du.log")
    NFILES[$fs,find,$run]=$(awk '{print $1}' <<<"$line")
    DUS[$fs,$run]=$(awk '{print $2}' <<<"$line")
    # 4. rm -rf of the build directory
    phase "$fs" "$run" rm-rf rm -rf "$WD/libgit2/build" || true
    T --log "$LOGDIR/$RUNTAG-check.log" sync || true
    timeout -k 2 "$BENCH_TIMEOUT" test -e "$WD/libgit2/build" && surprise "$fs (run $run): libgit2/build still exists after rm -rf"
    check_count "$fs" "$run" rm-rf "$WD" "$EXP_RM"
    n=$(count_files "$WD/notes" 2>/dev/null) || n="?"
    [[ $n == "$BENCH_LOWER_FILES" ]] || surprise "$fs (run $run): notes/ (lower only, untouched) shows $n files, expected $BENCH_LOWER_FILES"
    la1=$(loadavg)
    LOADS[$fs,$run]="$la0 -> $la1"
}

# ------------------------------------------------------------------------------------------- rounds
for ((run = 1; run <= BENCH_RUNS; run++)); do
    # Rotate the order every round, so that slow drift of the machine's load spreads over all four.
    order=()
    for ((i = 0; i < ${#FS_LIST[@]}; i++)); do
        order+=("${FS_LIST[$(((i + run - 1) % ${#FS_LIST[@]}))]}")
    done
    for fs in "${order[@]}"; do
        RUNTAG=$fs-run$run
        d=$ROOT/$RUNTAG
        say "[run $run/$BENCH_RUNS] $fs: load $(loadavg)"
        T --log "$LOGDIR/$RUNTAG-check.log" sync || true
        if setup_fs "$fs" "$d"; then
            run_workload "$fs" "$run" "$d"
        else
            for p in "${PHASES[@]}"; do RES[$fs,$p,$run]=FAIL; done
        fi
        teardown_fs "$fs" "$d"
        # (the directories are kept until the end: ext4 allocates inodes slowly right after many frees)
        msg=
        for p in "${PHASES[@]}"; do msg+=" $p $(fmt "${RES[$fs,$p,$run]:-skipped}")"; done
        say "    $fs:$msg  (load ${LOADS[$fs,$run]:-?})"
    done
done

# ------------------------------------------------------------------- FUSE requests per phase (untimed)
# count_range <file> <from> <to>: "N  (OP n, OP n, ...)" for the opcodes logged between two byte offsets.
count_range() {
    head -c "$3" "$1" | tail -c +$(($2 + 1)) | awk '
        /^ (WARN|ERROR) / {next}
        /^lookup response/ {if ($NF == 0) neg++; else pos++; next}
        {sub(/^opcode=FUSE_/, ""); c[$0]++; n++}
        END {
            out = ""
            while (1) {
                best = ""
                for (k in c) if (best == "" || c[k] > c[best]) best = k
                if (best == "") break
                out = out (out == "" ? "" : ", ") best " " c[best]
                if (best == "LOOKUP" && pos + neg > 0) out = out " [" (c[best] - pos - neg) " errors]"
                delete c[best]
            }
            printf "%d  (%s)", n, out
        }'
}
declare -A COUNTS=()
COUNT_FS=()
if [[ $BENCH_COUNT == 1 ]]; then
    want_fs scorpio && COUNT_FS+=(scorpio)
    want_fs fuse-overlayfs && COUNT_FS+=(fuse-overlayfs)
fi
for fs in "${COUNT_FS[@]}"; do
    RUNTAG=count-$fs d=$ROOT/count-$fs
    COUNT_FILE=$LOGDIR/$RUNTAG-requests.log
    say "[count] $fs: counting FUSE requests per phase (untimed)"
    T --log "$LOGDIR/$RUNTAG-check.log" sync || true
    if setup_fs "$fs" "$d"; then
        mark() { log_offset 0.5 "$COUNT_FILE"; }
        m0=$(mark)
        for p in "${PHASES[@]}"; do
            rc=0
            case $p in
            untar) T --log "$LOGDIR/$RUNTAG-$p.log" bash -c 'cd "$1" && tar -xf "$2"' _ "$WD" "$TAR" || rc=$? ;;
            build) T --log "$LOGDIR/$RUNTAG-$p.log" make -C "$WD/libgit2" -f "$MK" -j"$BENCH_JOBS" || rc=$? ;;
            find+du) T --log "$LOGDIR/$RUNTAG-$p.log" bash -c 'cd "$1" && find . -type f | wc -l && du -s .' _ "$WD" || rc=$? ;;
            rm-rf) T --log "$LOGDIR/$RUNTAG-$p.log" rm -rf "$WD/libgit2/build" || rc=$? ;;
            esac
            ((rc == 0)) || surprise "$fs (counting pass): phase '$p' failed (status $rc); log $LOGDIR/$RUNTAG-$p.log"
            m1=$(mark)
            COUNTS[$fs,$p]=$(count_range "$COUNT_FILE" "$m0" "$m1")
            m0=$m1
        done
        # (rfuse3 warns "The data is not 4096 bytes aligned" on every unaligned WRITE at this level: noise)
        warns=$(grep -E '^ (WARN|ERROR) ' "$COUNT_FILE" | grep -v 'not 4096 bytes aligned' | sed 's/{request=.*}}//') || true
        if [[ -n $warns ]]; then
            say "    $fs logged warnings/errors during the counting pass (see $COUNT_FILE):"
            printf '%s\n' "$warns" | sort | uniq -c | sort -rn | awk 'NR <= 5' | cut -c1-200 >&2
        fi
    fi
    teardown_fs "$fs" "$d"
    COUNT_FILE=
done

# ------------------------------------------------------------------------------- consistency checks
REF=
for fs in "${FS_LIST[@]}"; do
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        s=${SUMS[$fs,$run]:-}
        [[ -n $s ]] || continue
        if [[ -z $REF ]]; then REF=$s REF_FROM="$fs run $run"; continue; fi
        [[ $s == "$REF" ]] || surprise "$fs (run $run): build output (sha1 of libgit2.a, git2: $s) differs from $REF_FROM ($REF)"
    done
done
declare -A REFN=() REFN_FROM=()
for fs in "${FS_LIST[@]}"; do
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        for k in buildout find; do
            n=${NFILES[$fs,$k,$run]:-}
            [[ -n $n ]] || continue
            if [[ -z ${REFN[$k]:-} ]]; then REFN[$k]=$n REFN_FROM[$k]="$fs run $run"; continue; fi
            [[ $n == "${REFN[$k]}" ]] || surprise "$fs (run $run): $k file count $n differs from ${REFN_FROM[$k]} (${REFN[$k]})"
        done
    done
done
EXP_FIND=
# (the build directory already held the NSTALE lower files; the build adds the rest of what it holds)
[[ -n ${REFN[buildout]:-} ]] && EXP_FIND=$((EXP_UNTAR - NSTALE + REFN[buildout]))
for fs in "${FS_LIST[@]}"; do
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        n=${NFILES[$fs,find,$run]:-}
        [[ -n $n && -n $EXP_FIND && $n != "$EXP_FIND" ]] \
            && surprise "$fs (run $run): find . -type f counted $n after the build, expected $EXP_FIND ($EXP_UNTAR after untar, ${REFN[buildout]} in libgit2/build/ after the build, $NSTALE of them from the lower tree)"
    done
done

# -------------------------------------------------------------------------------------------- table
declare -A MED=()
# medians <prefix>: MED[<prefix><fs>,<phase>] from RES[<prefix><fs>,<phase>,<run>], and the total.
medians() {
    local pre=$1 fs p run tot v vals totals
    for fs in "${ALL_FS[@]}"; do
        want_fs "$fs" || { for p in "${PHASES[@]}" total; do MED[$pre$fs,$p]=-; done; continue; }
        totals=()
        for ((run = 1; run <= BENCH_RUNS; run++)); do
            tot=0
            for p in "${PHASES[@]}"; do
                v=${RES[$pre$fs,$p,$run]:-FAIL}
                if [[ $v == FAIL || $tot == FAIL ]]; then tot=FAIL; else tot=$(awk -v a="$tot" -v b="$v" 'BEGIN{printf "%.6f", a+b}'); fi
            done
            totals+=("$tot")
        done
        for p in "${PHASES[@]}"; do
            vals=()
            for ((run = 1; run <= BENCH_RUNS; run++)); do vals+=("${RES[$pre$fs,$p,$run]:-FAIL}"); done
            MED[$pre$fs,$p]=$(median "${vals[@]}")
        done
        MED[$pre$fs,total]=$(median "${totals[@]}")
    done
}
# table <prefix>
table() {
    local pre=$1 p
    printf '%-9s %9s %11s %15s %9s  | %15s %16s %14s\n' phase native kernel-ovl fuse-overlayfs scorpio scorpio/native fuse-ovl/native kernel/native
    for p in "${PHASES[@]}" total; do
        printf '%-9s %9s %11s %15s %9s  | %15s %16s %14s\n' "$p" \
            "$(fmt "${MED[${pre}native,$p]}")" "$(fmt "${MED[${pre}kernel-ovl,$p]}")" "$(fmt "${MED[${pre}fuse-overlayfs,$p]}")" "$(fmt "${MED[${pre}scorpio,$p]}")" \
            "$(ratio "${MED[${pre}scorpio,$p]}" "${MED[${pre}native,$p]}")" "$(ratio "${MED[${pre}fuse-overlayfs,$p]}" "${MED[${pre}native,$p]}")" \
            "$(ratio "${MED[${pre}kernel-ovl,$p]}" "${MED[${pre}native,$p]}")"
    done
}
medians ""
medians "cpu:"

LOAD_END=$(loadavg)
echo
echo "== compare.sh: libgit2 ($NTAR files) untar + build (make -j$BENCH_JOBS, $(nproc) cpus) + find/du + rm -rf, over a lower tree of $NLOWER files =="
if ((BENCH_RUNS > 1)); then echo "   medians of $BENCH_RUNS runs (each on a fresh mount; order rotated every run); wall-clock seconds"; else echo "   one run each, on a fresh mount; wall-clock seconds"; fi
echo "   load average (1/5/15 min): $LOAD_START at start, $LOAD_END at end"
echo
table ""
echo
echo "CPU seconds (user+sys of the phase's processes + of the filesystem daemon, scorpio or fuse-overlayfs):"
echo "less disturbed by other load than the wall clock; FUSE round-trip latency itself is not in it."
table "cpu:"
echo
echo "per run (files: after untar / found after build / after rm -rf; du -s KiB after build; load 1/5/15 before -> after):"
for ((run = 1; run <= BENCH_RUNS; run++)); do
    for fs in "${FS_LIST[@]}"; do
        printf '  run %d %-15s files %s / %s / %s  du %s  load %s\n' "$run" "$fs" \
            "${NFILES[$fs,untar,$run]:-?}" "${NFILES[$fs,find,$run]:-?}" "${NFILES[$fs,rm-rf,$run]:-?}" \
            "${DUS[$fs,$run]:-?}" "${LOADS[$fs,$run]:-?}"
        if [[ -n ${DCPU[$fs,build,$run]:-} ]]; then
            printf '        %-15s daemon CPU: untar %s, build %s, find+du %s, rm-rf %s\n' "" \
                "${DCPU[$fs,untar,$run]:-?}" "${DCPU[$fs,build,$run]:-?}" "${DCPU[$fs,find+du,$run]:-?}" "${DCPU[$fs,rm-rf,$run]:-?}"
        fi
    done
done
echo "  expected files: $EXP_UNTAR after untar, ${EXP_FIND:-?} after the build, $EXP_RM after rm -rf"
if ((${#COUNT_FS[@]})); then
    echo
    echo "FUSE requests per phase (one more, untimed pass on a fresh mount: scorpio from rfuse3's debug log,"
    echo "fuse-overlayfs from its -d log; scorpio's LOOKUP [errors] are lookups answered with an error such as"
    echo "ENOENT, which the kernel does not cache, unlike an entry with nodeid 0 and a timeout):"
    for p in "${PHASES[@]}"; do
        for fs in "${COUNT_FS[@]}"; do
            printf '  %-8s %-15s %s\n' "$p" "$fs" "${COUNTS[$fs,$p]:-?}"
        done
    done
fi
exit_with_surprises
