#!/usr/bin/env bash
# POSIX conformance of Scorpio's writable overlay, measured with pjdfstest (the Rust rewrite).
#
# Install (what CI runs; a fresh Debian 12 with cargo, no apt package needed, the binary links
# only libc and libgcc_s):
#     cargo install pjdfstest --locked --version 0.2.2
# That took 1m08s here (2 cores, release build of ~60 crates, while another cargo build ran).
#
# Usage: tests/conformance/pjdfstest.sh [SCORPIO_BIN]
#   SCORPIO_BIN          the daemon (argument, else env, else target/debug/scorpio)
#   PJDFSTEST            the pjdfstest binary (else found on PATH or in ~/.cargo/bin)
#   PJDFSTEST_CONFIG     config file (default: pjdfstest.toml next to this script)
#   PJDFSTEST_TIMEOUT    seconds allowed for each pjdfstest run (default 1200)
#   PJDFSTEST_ALLOW_FAIL=1  report regressions but exit 0
#   PJDFSTEST_KEEP=1     keep the temp dir (outputs, daemon log, upper layer) for inspection
#   PJDFSTEST_PATTERNS   space-separated test-name filters passed to pjdfstest (default: all)
#
# What it does: runs the whole suite once on a plain directory on the same disk as the temp dir
# (the reference), then once inside a writable Scorpio overlay whose lower layer already holds
# files; prints both summaries and every test that passes on the plain directory but fails on
# Scorpio (with pjdfstest's message), and exits 1 if there is any.
# Run as root (half of the suite switches users; FUSE mounting needs it too).
#
# Measured here (398 tests, root, ext4, this config, /dev/shm as the secondary fs for the two
# EXDEV tests): plain directory 385 passed, 0 failed, 13 skipped, 3-5 s; Scorpio (debug build)
# 373 passed, 11 failed, 14 skipped, 3-5 s; the whole script ~10 s. For comparison, same config:
# kernel overlayfs 343/41/14, fuse-overlayfs 334/50/14 (passed/failed/skipped).
# Exit status: 0 ok; 1 regressions, a daemon crash or an unfinished run; 2 setup error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# --- inputs ------------------------------------------------------------------------------------
scorpio_bin="${1:-${SCORPIO_BIN:-$root/target/debug/scorpio}}"
case "$scorpio_bin" in /*) ;; *) scorpio_bin="$PWD/$scorpio_bin" ;; esac
config="${PJDFSTEST_CONFIG:-$here/pjdfstest.toml}"
run_timeout="${PJDFSTEST_TIMEOUT:-1200}"
install_hint="cargo install pjdfstest --locked --version 0.2.2"

die() { echo "pjdfstest.sh: $*" >&2; exit 2; }

pjd="${PJDFSTEST:-}"
if [ -z "$pjd" ]; then
  pjd="$(command -v pjdfstest || true)"
  [ -n "$pjd" ] || [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/pjdfstest" ] \
    || pjd="${CARGO_HOME:-$HOME/.cargo}/bin/pjdfstest"
fi
[ -n "$pjd" ] && [ -x "$pjd" ] || die "pjdfstest not found on PATH or in ~/.cargo/bin; install it with: $install_hint"
[ -x "$scorpio_bin" ] || die "scorpio binary not found or not executable: $scorpio_bin (build it with cargo build, or pass its path)"
[ -r "$config" ] || die "config not readable: $config"
[ -e /dev/fuse ] || die "/dev/fuse is missing"
command -v fusermount3 >/dev/null || die "fusermount3 is missing (Debian package fuse3)"
command -v git >/dev/null || die "git is missing"
command -v timeout >/dev/null || die "timeout (coreutils) is missing"
[ "$(id -u)" = 0 ] || echo "pjdfstest.sh: warning: not root; pjdfstest skips its root-only tests and FUSE may refuse to mount" >&2

# --- temp dirs and cleanup ---------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/scorpio-pjdfstest.XXXXXX")"
# mktemp makes it 0700: the dummy users must be able to walk into the directories under test.
chmod 0755 "$tmp"
sec=""
scorpio_pid=""
pjd_pid=""
ws="$tmp/ws"

fstype() { findmnt -n -o FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; }

mounted_under() { # prints mountpoints at or below $1
  awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print m }' /proc/self/mountinfo
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [ -n "$pjd_pid" ] && kill -0 "$pjd_pid" 2>/dev/null; then
    kill -TERM "$pjd_pid" 2>/dev/null || true # timeout passes it on to pjdfstest
    for i in $(seq 50); do kill -0 "$pjd_pid" 2>/dev/null || break; sleep 0.2; done
    pkill -KILL -P "$pjd_pid" 2>/dev/null || true # pjdfstest itself, by its parent's id
    kill -KILL "$pjd_pid" 2>/dev/null || true
  fi
  if [ -n "$scorpio_pid" ] && kill -0 "$scorpio_pid" 2>/dev/null; then
    kill -TERM "$scorpio_pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$scorpio_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$scorpio_pid" 2>/dev/null; then
      echo "pjdfstest.sh: scorpio did not exit within 20 s of SIGTERM; killing it" >&2
      kill -KILL "$scorpio_pid" 2>/dev/null || true
    fi
    wait "$scorpio_pid" 2>/dev/null || true
  fi
  # Lazy-unmount whatever is still mounted under the temp dir (deepest first).
  local m
  for m in $(mounted_under "$tmp" | sort -r); do
    fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if [ -n "$(mounted_under "$tmp")" ]; then
    echo "pjdfstest.sh: still mounted under $tmp; not removing it" >&2
  elif [ "${PJDFSTEST_KEEP:-0}" = 1 ]; then
    echo "pjdfstest.sh: kept $tmp"
  else
    rm -rf "$tmp"
  fi
  [ -z "$sec" ] || rm -rf "$sec"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A secondary file system for the two EXDEV tests: /dev/shm when it is another file system.
if [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$tmp")" ]; then
  sec="$(mktemp -d /dev/shm/scorpio-pjdfstest.XXXXXX)"
fi

read -r -a patterns <<<"${PJDFSTEST_PATTERNS:-}"

# run_pjd NAME DIR: runs the suite in DIR; output in $tmp/NAME.out, results in $tmp/NAME.tsv
# (name<TAB>status<TAB>message). Returns pjdfstest's exit status (1 = some failed, 124 = timeout).
run_pjd() {
  local name="$1" dir="$2" rc=0 start end
  local args=(-c "$config" -p "$dir")
  [ -z "$sec" ] || args+=(-s "$sec")
  start=$(date +%s)
  # In the background, so that a SIGINT/SIGTERM to this script is handled at once (cleanup
  # stops it); `timeout` bounds a run that hangs in the file system.
  RUST_BACKTRACE=0 NO_COLOR=1 timeout -k 30 "$run_timeout" "$pjd" "${args[@]}" -- "${patterns[@]}" \
    >"$tmp/$name.raw" 2>&1 </dev/null &
  pjd_pid=$!
  wait "$pjd_pid" || rc=$?
  pjd_pid=""
  end=$(date +%s)
  sed 's/\x1b\[[0-9;]*m//g' "$tmp/$name.raw" >"$tmp/$name.out"
  awk '
    function flush() { if (cur != "") { print cur "\t" st "\t" msg }; cur = "" }
    match($0, /^[A-Za-z0-9_:]+ +(ok|FAILED|skipped|PASSED UNEXPECTEDLY|failed as expected)$/) {
      flush(); cur = $1; st = $0; sub(/^[A-Za-z0-9_:]+ +/, "", st); msg = ""; next
    }
    /^Summary:/ || /^Backtrace:/ { flush(); next }
    cur != "" && $0 != "" { line = $0; sub(/^[ \t]+/, "", line); msg = (msg == "" ? line : msg " | " line) }
    END { flush() }
  ' "$tmp/$name.out" >"$tmp/$name.tsv"
  echo "$name: pjdfstest exited $rc after $((end - start)) s"
  return "$rc"
}

summary_of() { grep -m1 '^Summary:' "$tmp/$1.out" || echo "Summary: none (pjdfstest did not finish; see $tmp/$1.out)"; }

# --- 1. reference: a plain directory on the same disk ------------------------------------------
echo "pjdfstest: $pjd ($("$pjd" --version 2>/dev/null || echo '?')); config: $config"
echo "scorpio:   $scorpio_bin"
echo "temp dir:  $tmp ($(fstype "$tmp"))${sec:+; secondary fs: $sec (tmpfs)}"
mkdir -p "$tmp/plain"
plain_rc=0
run_pjd plain "$tmp/plain" || plain_rc=$?
if [ "$plain_rc" = 124 ] || [ "$plain_rc" = 137 ] || ! grep -q '^Summary:' "$tmp/plain.out"; then
  tail -n 20 "$tmp/plain.out" >&2
  die "pjdfstest did not complete on the plain directory (exit $plain_rc)"
fi

# --- 2. Scorpio: a repository whose writable path already holds files ---------------------------
repo="$tmp/repo"
git -c init.defaultBranch=main init -q "$repo"
mkdir -p "$repo/work/sub"
for i in 1 2 3; do echo "file $i" >"$repo/work/f$i"; done
echo nested >"$repo/work/sub/nested"
ln -s f1 "$repo/work/link"
echo top >"$repo/README"
git -C "$repo" add -A
git -C "$repo" -c user.name=pjdfstest -c user.email=pjdfstest@localhost commit -qm init

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 20); do
  p=$((20000 + RANDOM % 40000))
  if port_free "$p"; then port=$p; break; fi
done
[ -n "$port" ] || die "no free TCP port found on 127.0.0.1"

mkdir -p "$ws"
cat >"$tmp/scorpio.toml" <<EOF
remote = "$repo"
workspace = "$ws"
store_path = "$tmp/store"
http_addr = "127.0.0.1:$port"
log_level = "info"
EOF

"$scorpio_bin" -c "$tmp/scorpio.toml" >"$tmp/scorpio.log" 2>&1 </dev/null &
scorpio_pid=$!

show_log() { echo "--- scorpio log (last 40 lines of $tmp/scorpio.log) ---" >&2; tail -n 40 "$tmp/scorpio.log" >&2; }

up=0
for _ in $(seq 150); do
  kill -0 "$scorpio_pid" 2>/dev/null || { show_log; die "scorpio exited before mounting"; }
  if [ -n "$(mounted_under "$ws")" ] && ! port_free "$port"; then up=1; break; fi
  sleep 0.2
done
[ "$up" = 1 ] || { show_log; die "scorpio did not mount $ws and serve 127.0.0.1:$port within 30 s"; }

body='{"path":"work"}'
if command -v curl >/dev/null; then
  resp="$(curl -sS --max-time 60 -X POST "http://127.0.0.1:$port/api/fs/mount" \
    -H 'content-type: application/json' -d "$body" 2>&1)" || { show_log; die "mount request failed: $resp"; }
  case "$resp" in *'"status":"Success"'*) ;; *) show_log; die "mount of work refused: $resp" ;; esac
else
  resp="$(timeout 60 "$scorpio_bin" -c "$tmp/scorpio.toml" mount work 2>&1)" || { show_log; die "scorpio mount work failed: $resp"; }
fi
echo "mounted work: $resp"
[ -f "$ws/work/f1" ] || { show_log; die "$ws/work does not show the repository's files"; }

scorpio_rc=0
run_pjd scorpio "$ws/work" || scorpio_rc=$?
crashed=0
if ! kill -0 "$scorpio_pid" 2>/dev/null; then
  crashed=1
  echo "SCORPIO DIED during the pjdfstest run" >&2
  show_log
fi

# --- 3. report -----------------------------------------------------------------------------------
echo
printf '%-24s %s\n' "plain dir ($(fstype "$tmp/plain")):" "$(summary_of plain)" "scorpio overlay:" "$(summary_of scorpio)"
incomplete=0
if [ "$scorpio_rc" = 124 ] || [ "$scorpio_rc" = 137 ] || ! grep -q '^Summary:' "$tmp/scorpio.out"; then
  incomplete=1
  echo "pjdfstest did not complete on scorpio (exit $scorpio_rc; 124 = the ${run_timeout}s timeout, 101 = a panic outside a test); last lines:" >&2
  tail -n 10 "$tmp/scorpio.out" >&2
fi

# Tests that pass on the plain directory but not on scorpio (failed, or never reported).
awk -F'\t' '
  FNR == NR { if ($2 == "ok") ok[$1] = 1; next }
  { st[$1] = $2; msg[$1] = $3 }
  END {
    for (t in ok) {
      if (!(t in st)) print t "\tNOT RUN\t(pjdfstest stopped before this test)"
      else if (st[t] != "ok" && st[t] != "skipped") print t "\t" st[t] "\t" msg[t]
    }
  }' "$tmp/plain.tsv" "$tmp/scorpio.tsv" | sort >"$tmp/regressions.tsv"
# A regression that passes when run again is intermittent, not a conformance failure: each is run
# up to five more times, alone (stopping at the first pass), and listed apart (open::etxtbsy is one: exec of a file read
# through FUSE sometimes lets an open for writing through, seen about once in five runs).
: >"$tmp/intermittent.tsv"
if [ "$crashed" = 0 ] && [ "$incomplete" = 0 ] && [ -s "$tmp/regressions.tsv" ]; then
  saved_patterns=("${patterns[@]}")
  : >"$tmp/still-failing.tsv"
  i=0
  while IFS=$'\t' read -r t st msg; do
    passed=0
    if [ "$st" = FAILED ]; then
      for r in 1 2 3 4 5; do
        i=$((i + 1))
        mkdir -p "$ws/work/retry-$i" && chmod 755 "$ws/work/retry-$i"
        patterns=("$t")
        run_pjd "retry-$i" "$ws/work/retry-$i" >/dev/null 2>&1 || true
        if awk -F'\t' -v t="$t" '$1 == t && $2 == "ok" { f = 1 } END { exit !f }' "$tmp/retry-$i.tsv"; then
          passed=$r
          break
        fi
      done
    fi
    if [ "$passed" -gt 0 ]; then
      printf '%s\t%s\t%s\n' "$t" "passed on retry $passed" "$msg" >>"$tmp/intermittent.tsv"
    else
      printf '%s\t%s\t%s\n' "$t" "$st" "$msg" >>"$tmp/still-failing.tsv"
    fi
  done <"$tmp/regressions.tsv"
  patterns=("${saved_patterns[@]}")
  mv "$tmp/still-failing.tsv" "$tmp/regressions.tsv"
fi
if [ -s "$tmp/intermittent.tsv" ]; then
  echo
  echo "intermittent on scorpio (failed once, passed when run again alone):"
  awk -F'\t' '{ printf "  %-55s %s\n      first failure: %s\n", $1, $2, $3 }' "$tmp/intermittent.tsv"
fi

awk -F'\t' 'FNR == NR { if ($2 == "ok") ok[$1] = 1; next } ($1 in ok) && $2 == "skipped" { print $1 }' \
  "$tmp/plain.tsv" "$tmp/scorpio.tsv" | sort >"$tmp/skipped-only-on-scorpio.txt"

if [ -s "$tmp/skipped-only-on-scorpio.txt" ]; then
  echo
  echo "pass on the plain directory, skipped on scorpio (a guard failed, not a failure):"
  sed 's/^/  /' "$tmp/skipped-only-on-scorpio.txt"
  # LINK_MAX comes from pathconf(3), which glibc answers from statfs's f_type; FUSE is unknown
  # to it, so link::link_count_max is skipped on every FUSE file system (fuse-overlayfs too).
fi

n=$(wc -l <"$tmp/regressions.tsv")
echo
if [ "$n" -gt 0 ]; then
  echo "$n test(s) pass on the plain directory but fail on scorpio:"
  awk -F'\t' '$2 != "NOT RUN" { printf "  %-55s %s\n      %s\n", $1, $2, $3 }' "$tmp/regressions.tsv"
  awk -F'\t' '$2 == "NOT RUN" { n++; if (n <= 5) l = l "\n    " $1 }
    END { if (n) printf "  %d not run (pjdfstest stopped before them), e.g.:%s\n", n, l }' "$tmp/regressions.tsv"
else
  echo "every test that passes on the plain directory passes on scorpio"
fi
other=$(awk -F'\t' '$2 == "FAILED"' "$tmp/plain.tsv" | wc -l)
[ "$other" = 0 ] || echo "($other test(s) fail on the plain directory too; not counted)"

status=0
if [ "$crashed" = 1 ] || [ "$incomplete" = 1 ]; then
  status=1
elif [ "$n" -gt 0 ] && [ "${PJDFSTEST_ALLOW_FAIL:-0}" != 1 ]; then
  status=1
fi
[ "$status" = 0 ] || [ "${PJDFSTEST_KEEP:-0}" = 1 ] || echo "(set PJDFSTEST_KEEP=1 to keep outputs and the daemon log)"
exit "$status"
