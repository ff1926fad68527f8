#!/usr/bin/env bash
# fsx on a file of a writable path: the same 100,000 random operations (seed fixed; reads,
# writes, mmap reads and writes, truncate, fallocate, hole punching, sendfile, copy_file_range,
# fsync; tests/conformance/fsx.toml) on native ext4, on a copied-up file of kernel overlayfs, of
# fuse-overlayfs (when installed) and of a Scorpio writable path; every read is checked by fsx.
# Prints each one's time and its ratio to ext4; exits 1 if fsx found a wrong byte anywhere.
#
# Usage: bash benches/fsx.sh [SCORPIO_BIN]   (root; default target/release/scorpio, else debug)
#   FSX_OPS    operations per run (default 100000)      FSX_SEED   seed (default 11)
#   BENCH_TMP  where the temp dirs go (default /tmp; the ext4 reference runs there too)
# Needs: fsx (cargo install fsx --locked --version 0.3.2), git, fusermount3; optional
# fuse-overlayfs (Debian package).
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Exit status 1 means that fsx found a wrong byte; errors before that are 2.
die() { say "$BENCH_NAME: error: $*"; exit 2; }
SCORPIO_BIN="${1:-}"
[ -n "$SCORPIO_BIN" ] || { [ -x "$REPO_DIR/target/release/scorpio" ] && SCORPIO_BIN="$REPO_DIR/target/release/scorpio"; } || SCORPIO_BIN="$REPO_DIR/target/debug/scorpio"
ops="${FSX_OPS:-100000}"
seed="${FSX_SEED:-11}"
cfg="$REPO_DIR/tests/conformance/fsx.toml"
fsx="$(command -v fsx || echo "$HOME/.cargo/bin/fsx")"
[ -x "$fsx" ] || die "fsx not found: cargo install fsx --locked --version 0.3.2"
[ -x "$SCORPIO_BIN" ] || die "scorpio binary not found: $SCORPIO_BIN (cargo build --release)"
[ "$(id -u)" = 0 ] || die "run as root (kernel overlayfs)"

BENCH_TMP=${BENCH_TMP:-/tmp}
install_cleanup
make_root scorpio-fsx

# The same 256 KiB file everywhere, in a directory of the lower layer or repository.
mkdir -p "$ROOT/lower/d"
head -c 262144 /dev/urandom >"$ROOT/lower/d/f.bin"
commit_dir "$ROOT/lower" base

failed=0
declare -A secs
run() { # name file
    local t0 t1
    t0=$EPOCHREALTIME
    if ! "$fsx" -N "$ops" -S "$seed" -f "$cfg" -P "$ROOT/art-$1" "$2" >"$ROOT/$1.log" 2>&1; then
        echo "FAIL $1: fsx found a difference (log: tail below)"; tail -5 "$ROOT/$1.log"; failed=1
    fi
    t1=$EPOCHREALTIME
    secs[$1]=$(fsec "$t0" "$t1" %.2f)
}
mkdir -p "$ROOT"/art-{ext4,overlayfs,fuse-overlayfs,scorpio}

mkdir -p "$ROOT/ext4" && cp "$ROOT/lower/d/f.bin" "$ROOT/ext4/f.bin"
run ext4 "$ROOT/ext4/f.bin"

mkdir -p "$ROOT/ovl"/{u,w,m}
mount -t overlay overlay -o "lowerdir=$ROOT/lower,upperdir=$ROOT/ovl/u,workdir=$ROOT/ovl/w" "$ROOT/ovl/m"
run overlayfs "$ROOT/ovl/m/d/f.bin"
umount "$ROOT/ovl/m"

if command -v fuse-overlayfs >/dev/null; then
    mkdir -p "$ROOT/fo"/{u,w,m}
    fuse-overlayfs -o "lowerdir=$ROOT/lower,upperdir=$ROOT/fo/u,workdir=$ROOT/fo/w" "$ROOT/fo/m"
    run fuse-overlayfs "$ROOT/fo/m/d/f.bin"
    fusermount3 -u "$ROOT/fo/m"
fi

port=$(free_port)
mkdir -p "$ROOT/ws" "$ROOT/store"
scorpio_config "$ROOT/scorpio.toml" "$ROOT/lower" "$ROOT/ws" "$ROOT/store" "$port" warn
launch_scorpio "$ROOT/scorpio.toml" "$ROOT/ws" "$ROOT/daemon.log"
wait_fuse_mount "$DPID" "$ROOT/ws" 0.05 || die "scorpio did not mount $ROOT/ws (log: $(tail -n 5 "$ROOT/daemon.log" | tr '\n' ' '))"
api_mount "$port" d "$ROOT/mount.json" \
    || die "POST /api/fs/mount {\"path\":\"d\"} failed (HTTP ${API_CODE:-none}): $(cat "$ROOT/mount.json" 2>/dev/null) $API_ERR"
run scorpio "$ROOT/ws/d/f.bin"

echo "fsx, $ops operations, seed $seed, 256 KiB file ($(nproc) CPUs, $(uname -r))"
printf '%-16s %8s %8s\n' fs seconds x-ext4
for n in ext4 overlayfs fuse-overlayfs scorpio; do
    [ -n "${secs[$n]:-}" ] || continue
    printf '%-16s %8s %8s\n' "$n" "${secs[$n]}" "$(ratio "${secs[$n]}" "${secs[ext4]}" %.1f)"
done
exit "$failed"
