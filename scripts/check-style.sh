#!/usr/bin/env bash
# Fails on calls that have no bound on what they write or that hide errors
# (the list curl's checksrc bans); use snprintf, memcpy with a checked length,
# strtol/strtoull with end-pointer checks.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\('
if hits=$(grep -rnE "$banned" --include='*.c' --include='*.h' service models include tests loadtest 2>/dev/null); then
  echo "check-style: banned functions used:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-style: no banned functions in $(find service models include tests loadtest -name '*.[ch]' | wc -l) files"
