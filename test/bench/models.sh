#!/usr/bin/env bash
# npm run bench:models — the models earn their place in bytes. On generated lectures whose seeds
# were never used for training (models/rate/dataset-v1.jsonl holds seeds 11–18), encode each
# lecture twice with the same floors: the heuristic plan (--no-models) and the model-assisted
# plan (VAD audio plan, face region of interest, learned QP per shot). Both packages go through
# the independent scorer (shared/eval/score.sh, lowest rendition); then `yachay models check`
# times every model per call on this machine.
#   LECTURES="es:1 en:2 es:3"   which lectures (lang:seed)
#   VARIANTS="heuristic:none vad:vad face:face rate:rate models:vad,face,rate"
#                               name:models of each plan; each model alone shows its own saving
#   BENCH_DIR=/tmp/yachay-bench lectures and encodes (shared with bench:optimize)
#   EVAL_DIR=…/shared/eval      the scorer
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EVAL="${EVAL_DIR:-$(cd "$ROOT/.." && pwd)/shared/eval}"
OUT="${BENCH_DIR:-/tmp/yachay-bench}"
LECTURES="${LECTURES:-es:1 en:2 es:3}"
VARIANTS="${VARIANTS:-heuristic:none vad:vad face:face rate:rate models:vad,face,rate}"
[ -x "$EVAL/score.sh" ] || { echo "bench: scorer not found at $EVAL (set EVAL_DIR)" >&2; exit 2; }
for spec in $LECTURES; do
  case "${spec##*:}" in 1[1-8]) echo "bench: seed ${spec##*:} was used for training; pick another" >&2; exit 2 ;; esac
done
mkdir -p "$OUT"
for spec in $LECTURES; do
  lang=${spec%%:*}; seed=${spec##*:}
  W="$OUT/$lang-$seed"; mkdir -p "$W/models" "$W/scores"
  if [ ! -f "$W/lecture/lecture.mp4" ]; then
    echo "== $lang-$seed: generating the lecture" >&2
    "$EVAL/make-lecture.sh" "$W/lecture" "$lang" "$seed" >/dev/null
  fi
  for spec2 in $VARIANTS; do
    variant=${spec2%%:*}; which=${spec2##*:}
    echo "== $lang-$seed: $variant ($which)" >&2
    flag=(--models "$which"); [ "$which" = none ] && flag=(--no-models)
    rm -rf "$W/models/$variant"
    t0=$(date +%s.%N)
    node "$ROOT/bin/yachay.mjs" optimize "$W/lecture/lecture.mp4" --out "$W/models/$variant" --quiet \
      --data-dir "$W/models/data" "${flag[@]}" > "$W/models/$variant.summary.json"
    t1=$(date +%s.%N)
    "$EVAL/score.sh" "$W/lecture/lecture.mp4" "$W/models/$variant/master.m3u8" "$W/lecture/groundtruth.json" \
      --variant lowest --no-asr > "$W/scores/models-$variant.json.new"
    node -e '
      const fs = require("fs"); const [p, t0, t1, sum] = process.argv.slice(1);
      const d = JSON.parse(fs.readFileSync(p + ".new"));
      d.wall_s = Math.round((Number(t1) - Number(t0)) * 10) / 10;
      d.yachay = JSON.parse(fs.readFileSync(sum));
      fs.writeFileSync(p, JSON.stringify(d, null, 1)); fs.unlinkSync(p + ".new");
    ' "$W/scores/models-$variant.json" "$t0" "$t1" "$W/models/$variant.summary.json"
  done
done
node "$ROOT/bin/yachay.mjs" models check --json > "$OUT/models-check.json"
VARIANTS="$VARIANTS" node --import tsx "$ROOT/test/bench/report-models.mjs" "$OUT" $LECTURES
