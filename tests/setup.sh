#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian or Ubuntu machine (idempotent; as root,
# or through sudo): fuse3 (fusermount3), git, a C compiler, curl, systemd-analyze, postgresql and
# redis-server (for the real Mega server, ../shared/mega), and the two conformance tools from
# crates.io, pjdfstest and fsx. `tests/run.sh` calls it first; so does
# `.ci/run` (where CI=true also refreshes the package lists).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v git >/dev/null || need+=(git)
command -v tar >/dev/null || need+=(tar)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v curl >/dev/null || need+=(curl)
command -v setpriv >/dev/null || need+=(util-linux)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v redis-server >/dev/null || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v ss >/dev/null || need+=(iproute2)
if [ "${#need[@]}" -gt 0 ] || [ "${CI:-}" = true ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q fuse3 git tar pkg-config ca-certificates gcc libc6-dev curl \
    util-linux systemd postgresql redis-server iproute2
fi
[ -e /dev/fuse ] || { echo "/dev/fuse is missing: FUSE tests cannot run" >&2; exit 1; }
# As distributions ship it, so a plain user can mount through fusermount3 (tests/unprivileged.rs).
[ "$(stat -c %a /dev/fuse)" = 666 ] || $SUDO chmod 0666 /dev/fuse

# pjdfstest (the Rust rewrite) for the POSIX conformance test of the writable overlay.
command -v pjdfstest >/dev/null || [ -x "$HOME/.cargo/bin/pjdfstest" ] ||
  cargo install pjdfstest --locked --version 0.2.2
# fsx for the random-I/O check of a copied-up file (tests/conformance.rs, benches/fsx.sh).
command -v fsx >/dev/null || [ -x "$HOME/.cargo/bin/fsx" ] ||
  cargo install fsx --locked --version 0.3.2
