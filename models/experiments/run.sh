#!/usr/bin/env bash
# Builds rank_exp against a build directory's core library and runs it.
#   models/experiments/run.sh BUILD_DIR ARGS...   (see rank_exp.c for ARGS)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"; shift
cc -std=gnu11 -O2 -Wall -Wextra -I"$here/../../include" -I"$build/include" \
  -o "$build/rank_exp" "$here/rank_exp.c" "$build/libadsmith_core.a" -lcjson -lm
exec "$build/rank_exp" "$@"
