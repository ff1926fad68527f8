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
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="${1:-}"
[ -n "$bin" ] || { [ -x "$root/target/release/scorpio" ] && bin="$root/target/release/scorpio"; } || bin="$root/target/debug/scorpio"
ops="${FSX_OPS:-100000}"
seed="${FSX_SEED:-11}"
cfg="$root/tests/conformance/fsx.toml"
fsx="$(command -v fsx || echo "$HOME/.cargo/bin/fsx")"
[ -x "$fsx" ] || { echo "fsx not found: cargo install fsx --locked --version 0.3.2" >&2; exit 2; }
[ -x "$bin" ] || { echo "scorpio binary not found: $bin (cargo build --release)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (kernel overlayfs)" >&2; exit 2; }

T=$(mktemp -d "${BENCH_TMP:-/tmp}/scorpio-fsx.XXXXXX")
daemon=
cleanup() {
    [ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true
    for m in "$T/ovl/m" "$T/fo/m" "$T/ws"; do
        grep -q " $m " /proc/mounts && { fusermount3 -uz "$m" 2>/dev/null || umount -l "$m"; }
    done
    [ -z "$daemon" ] || wait "$daemon" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

# The same 256 KiB file everywhere, in a directory of the lower layer or repository.
mkdir -p "$T/lower/d"
head -c 262144 /dev/urandom >"$T/lower/d/f.bin"
git -C "$T/lower" init -q -b main && git -C "$T/lower" add -A \
    && git -C "$T/lower" -c user.name=b -c user.email=b@b commit -qm base

failed=0
declare -A secs
run() { # name file
    local t0 t1
    t0=$EPOCHREALTIME
    if ! "$fsx" -N "$ops" -S "$seed" -f "$cfg" -P "$T/art-$1" "$2" >"$T/$1.log" 2>&1; then
        echo "FAIL $1: fsx found a difference (log: tail below)"; tail -5 "$T/$1.log"; failed=1
    fi
    t1=$EPOCHREALTIME
    secs[$1]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
}
mkdir -p "$T"/art-{ext4,overlayfs,fuse-overlayfs,scorpio}

mkdir -p "$T/ext4" && cp "$T/lower/d/f.bin" "$T/ext4/f.bin"
run ext4 "$T/ext4/f.bin"

mkdir -p "$T/ovl"/{u,w,m}
mount -t overlay overlay -o "lowerdir=$T/lower,upperdir=$T/ovl/u,workdir=$T/ovl/w" "$T/ovl/m"
run overlayfs "$T/ovl/m/d/f.bin"
umount "$T/ovl/m"

if command -v fuse-overlayfs >/dev/null; then
    mkdir -p "$T/fo"/{u,w,m}
    fuse-overlayfs -o "lowerdir=$T/lower,upperdir=$T/fo/u,workdir=$T/fo/w" "$T/fo/m"
    run fuse-overlayfs "$T/fo/m/d/f.bin"
    fusermount3 -u "$T/fo/m"
fi

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir -p "$T/ws" "$T/store"
cat >"$T/scorpio.toml" <<EOF
remote = "$T/lower"
workspace = "$T/ws"
store_path = "$T/store"
http_addr = "127.0.0.1:$port"
log_level = "warn"
EOF
"$bin" -c "$T/scorpio.toml" 2>"$T/daemon.log" &
daemon=$!
for _ in $(seq 200); do grep -q " $T/ws fuse" /proc/mounts && break; sleep 0.05; done
curl -fsS -X POST "http://127.0.0.1:$port/api/fs/mount" -H 'content-type: application/json' -d '{"path":"d"}' >/dev/null
run scorpio "$T/ws/d/f.bin"

echo "fsx, $ops operations, seed $seed, 256 KiB file ($(nproc) CPUs, $(uname -r))"
printf '%-16s %8s %8s\n' fs seconds x-ext4
for n in ext4 overlayfs fuse-overlayfs scorpio; do
    [ -n "${secs[$n]:-}" ] || continue
    printf '%-16s %8s %8s\n' "$n" "${secs[$n]}" "$(awk -v a="${secs[$n]}" -v b="${secs[ext4]}" 'BEGIN{printf "%.1f", a/b}')"
done
exit "$failed"
