#!/usr/bin/env bash
# README command 1: install what is missing, build, and run `adsmith serve` on
# the embedded default (LMDB in ./adsmith-data, http://127.0.0.1:8080, HTTP/1.1
# and h2c), with --demo: a first start prints an admin API key and stores the demo
# campaign. Extra arguments go to `adsmith serve` (see `build/adsmith serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
[ -f build/build.ninja ] || meson setup build -Dtests=false >/dev/null
meson compile -C build adsmith >/dev/null
echo "serve: starting build/adsmith serve $* (stop with Ctrl-C)" >&2
exec build/adsmith serve --demo "$@"
