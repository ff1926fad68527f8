#!/usr/bin/env bash
# The test command: installs what the tests need (tests/setup.sh), then runs every test.
#   bash tests/run.sh                  # all of it
#   bash tests/run.sh --test vcs       # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Without arguments: every target.
if [ "$#" -eq 0 ]; then set -- --all-targets; fi
cargo test "$@" -- --test-threads 4
