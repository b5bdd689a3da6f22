#!/usr/bin/env bash
# Installs the Debian (bookworm) packages adsmith needs, only those missing.
# Used by scripts/serve.sh, scripts/test.sh and the Dockerfile, so the three
# cannot drift apart.
#
#   scripts/install-deps.sh SET...     SET: runtime, build, test, bench
set -euo pipefail

runtime=(libh2o-evloop0.13 liblmdb0 libmsgpackc2 libinih1 libcjson1 libssl3 tzdata ca-certificates curl
         libpcre2-8-0 libcurl4)  # issue 7: the tokenizer's pre-split (PCRE2), the chat-completions client (libcurl)
build=(gcc libc6-dev pkg-config meson ninja-build git
       libh2o-evloop-dev libssl-dev liblmdb-dev libmsgpack-dev libinih-dev libcjson-dev
       libnghttp2-dev   # libnghttp2: adsmith-load's HTTP/2 client (issue 8)
       libpcre2-dev libcurl4-openssl-dev)  # issue 7
test=(libcriterion-dev libcurl4-openssl-dev openssl curl lmdb-utils)
# node and npm run the schema equivalence test (ajv); Debian's packages only
# when the commands are missing, so a node installed another way is kept.
command -v node >/dev/null || test+=(nodejs)
command -v npm >/dev/null || test+=(npm)
# models/bench/run.sh: the xgboost peer (adsmith-peer is built when libxgboost is found) and plots.
bench=(libxgboost-dev gnuplot-nox util-linux python3)
# loadtest/: h2load (nghttp2-client) as the baseline next to adsmith-load; gnuplot-nox renders its plots.
bench+=(nghttp2-client)

want=()
for set in "$@"; do
  case "$set" in
    runtime) want+=("${runtime[@]}") ;;
    build) want+=("${runtime[@]}" "${build[@]}") ;;
    test) want+=("${test[@]}") ;;
    bench) want+=("${bench[@]}") ;;
    *) echo "install-deps: unknown set '$set' (runtime, build, test, bench)" >&2; exit 2 ;;
  esac
done
[ ${#want[@]} -gt 0 ] || { echo "usage: $0 runtime|build|test|bench..." >&2; exit 2; }

missing=()
for p in "${want[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
    case " ${missing[*]-} " in *" $p "*) ;; *) missing+=("$p") ;; esac
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root, or install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
