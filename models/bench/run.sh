#!/usr/bin/env bash
# adsmith's click model next to an xgboost GBDT, on the same training rows of
# each shared click log, scored on the same test rows:
#
#   criteo   criteo/criteo_head4222.tsv, rows 0:3378 train (first 80%), 3378: test
#   avazu    avazu/train.csv train, avazu/test.csv test
#   ipinyou  ipinyou/train.fm.txt train, ipinyou/test.fm.txt test (libsvm; a later day)
#
# adsmith is trained with `adsmith train` and scored with `adsmith eval --json`
# (logloss, AUC, Σp/Σy, model size); adsmith-peer (models/bench/peer.c) trains
# xgboost on the same rows, scores it with the same metric code and times both
# models on one pinned CPU (median of REPEAT passes). Everything runs on one
# core: taskset -c CPU, OMP_NUM_THREADS=1.
#
#   models/bench/run.sh [SET...]          SET: criteo avazu ipinyou (default: all)
#
# Environment: BUILD (default build/; must hold adsmith and adsmith-peer, i.e. be
# configured where libxgboost-dev is installed: scripts/install-deps.sh bench),
# CTR_DATA (default ../shared/ctr-data), CPU (default 1), REPEAT (default 7),
# SEED (default 1), KEEP=1 keeps the models and JSON in the printed directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
data=${CTR_DATA:-$root/../shared/ctr-data}
cpu=${CPU:-1}
repeat=${REPEAT:-7}
seed=${SEED:-1}
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(criteo avazu ipinyou)

for prog in adsmith adsmith-peer; do
  [ -x "$build/$prog" ] || { echo "run.sh: $build/$prog is missing (build with libxgboost-dev installed; BUILD=dir)" >&2; exit 2; }
done
[ -d "$data" ] || { echo "run.sh: no data in $data (CTR_DATA=dir)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "run.sh: taskset (util-linux) is needed" >&2; exit 2; }

work=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then echo "run.sh: keeping models and results in $work" >&2; else trap 'rm -rf "$work"' EXIT; fi
pin=(env OMP_NUM_THREADS=1 taskset -c "$cpu")

for set in "${sets[@]}"; do
  case "$set" in
    criteo) format=criteo; train=$data/criteo/criteo_head4222.tsv; test=$train; train_rows=0:3378; test_rows=3378: ;;
    avazu) format=avazu; train=$data/avazu/train.csv; test=$data/avazu/test.csv; train_rows=; test_rows= ;;
    ipinyou) format=libsvm; train=$data/ipinyou/train.fm.txt; test=$data/ipinyou/test.fm.txt; train_rows=; test_rows= ;;
    *) echo "run.sh: unknown set '$set' (criteo, avazu, ipinyou)" >&2; exit 2 ;;
  esac
  model=$work/$set.model
  echo "== $set: adsmith train" >&2
  if ! "${pin[@]}" "$build/adsmith" train --input "$train" --format "$format" ${train_rows:+--rows "$train_rows"} \
    --seed "$seed" --out "$model" 2> "$work/$set.train.log"; then
    cat "$work/$set.train.log" >&2
    exit 1
  fi
  tail -n 1 "$work/$set.train.log" >&2
  "${pin[@]}" "$build/adsmith" eval --model "$model" --input "$test" --format "$format" \
    ${test_rows:+--rows "$test_rows"} --json > "$work/$set.eval.json"
  echo "== $set: xgboost (grid search on a validation split of the training rows) and timing" >&2
  "${pin[@]}" "$build/adsmith-peer" --format "$format" --train "$train" ${train_rows:+--train-rows "$train_rows"} \
    --test "$test" ${test_rows:+--test-rows "$test_rows"} --model "$model" --repeat "$repeat" > "$work/$set.peer.json"
done

python3 - "$work" "${sets[@]}" <<'EOF'
import json, math, sys

work, sets = sys.argv[1], sys.argv[2:]

def f(x, fmt):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

print("%-8s %-15s %8s %7s %7s %10s %10s %10s %10s" % ("data", "model", "logloss", "AUC", "Σp/Σy", "bytes",
      "ns 1 row", "ns serve", "ns batch"))
notes = []
for s in sets:
    ev = json.load(open(f"{work}/{s}.eval.json"))
    peer = json.load(open(f"{work}/{s}.peer.json"))
    a, x = peer["adsmith"], peer["xgboost"]
    # adsmith's accuracy comes from `adsmith eval --json`; the peer's own scoring of the same model must agree.
    for k, kk in (("logloss", "logloss"), ("auc", "auc"), ("calibration", "calibration")):
        if abs(ev[k] - a[kk]) > 1e-9:
            print(f"run.sh: {s}: adsmith eval and adsmith-peer disagree on {k}: {ev[k]} vs {a[kk]}", file=sys.stderr)
            sys.exit(1)
    print("%-8s %-15s %8s %7s %7s %10d %10s %10s %10s" % (s, "adsmith " + ev["model_version"].split("-")[0],
          f(ev["logloss"], ".4f"), f(ev["auc"], ".4f"), f(ev["calibration"], ".3f"), ev["model_bytes"],
          f(a["ns_row"], ".0f"), f(a["ns_cand"], ".0f"), "-"))
    print("%-8s %-15s %8s %7s %7s %10d %10s %10s %10s" % ("", "xgboost gbdt", f(x["logloss"], ".4f"),
          f(x["auc"], ".4f"), f(x["calibration"], ".3f"), x["bytes"], f(x["ns_row"], ".0f"),
          f(x["ns_inplace"], ".0f"), f(x["ns_batch"], ".0f")))
    notes.append(f"{s}: {peer['train_rows']} training rows, {peer['test_rows']} test rows "
                 f"({ev['positives']} clicks); adsmith request with one candidate {a['ns_req']:.0f} ns; "
                 f"xgboost {peer['xgb_params']}")
print()
print("ns 1 row:  adsmith rank_model_predict_row(); xgboost XGBoosterPredict on a one-row DMatrix (built untimed)")
print("ns serve:  adsmith rank_req_score() per extra candidate of a committed request; xgboost")
print("           XGBoosterPredictFromCSR (in-place) on one row")
print("ns batch:  xgboost XGBoosterPredict on the whole test matrix, per row")
print("bytes:     adsmith model file; xgboost UBJSON model (XGBoosterSaveModelToBuffer)")
for n in notes:
    print(n)
EOF
