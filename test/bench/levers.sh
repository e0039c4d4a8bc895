#!/usr/bin/env bash
# npm run bench:levers — issue 13 item 1: each lever toward 0.35 MB/min on its own row. Every
# variant optimizes the same generated lectures (models on, as a box runs) with the checkout it
# names, and the independent scorer (shared/eval/score.sh --variant lowest) measures the lowest
# full rendition (data-saver video + Opus). Levers that change the code are compared by running
# the older checkout (e.g. main before the merge) beside this one; a switch in the config by env.
#   LECTURES="es:1 en:2 es:3"
#   VARIANTS="before@/work/main levers@."   name@checkout[@VAR=value,VAR=value]; the first is the
#                               baseline the others are compared with
#   BENCH_DIR=/tmp/yachay-bench lectures (reused when found), encodes in <lecture>/levers/<name>
#   RUN=0                       only print the table from the scores already there
#   REUSE=1                     keep a variant whose score is already there (run only the new ones)
#   EVAL_DIR=…/shared/eval      the scorer
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EVAL="${EVAL_DIR:-$(cd "$ROOT/.." && pwd)/shared/eval}"
OUT="${BENCH_DIR:-/tmp/yachay-bench}"
LECTURES="${LECTURES:-es:1 en:2 es:3}"
VARIANTS="${VARIANTS:-before@$ROOT/../main levers@$ROOT}"
[ -x "$EVAL/score.sh" ] || { echo "bench: scorer not found at $EVAL (set EVAL_DIR)" >&2; exit 2; }
if [ "${RUN:-1}" = 1 ]; then
  for spec in $LECTURES; do
    lang=${spec%%:*}; seed=${spec##*:}
    W="$OUT/$lang-$seed"; mkdir -p "$W/levers"
    if [ ! -f "$W/lecture/lecture.mp4" ]; then
      echo "== $lang-$seed: generating the lecture" >&2
      "$EVAL/make-lecture.sh" "$W/lecture" "$lang" "$seed" >/dev/null
    fi
    for v in $VARIANTS; do
      IFS=@ read -r name dir envs <<<"$v"
      dir="$(cd "${dir:-$ROOT}" && pwd)"
      if [ "${REUSE:-0}" = 1 ] && [ -f "$W/levers/$name.score.json" ]; then continue; fi
      echo "== $lang-$seed: $name ($dir${envs:+, $envs})" >&2
      rm -rf "$W/levers/$name"
      t0=$(date +%s.%N)
      env ${envs//,/ } node "$dir/bin/yachay.mjs" optimize "$W/lecture/lecture.mp4" --out "$W/levers/$name" --quiet \
        --data-dir "$W/levers/data-$name" > "$W/levers/$name.summary.json"
      t1=$(date +%s.%N)
      "$EVAL/score.sh" "$W/lecture/lecture.mp4" "$W/levers/$name/master.m3u8" "$W/lecture/groundtruth.json" \
        --variant lowest --no-asr > "$W/levers/$name.score.json"
      echo "$t0 $t1 $(git -C "$dir" rev-parse --short HEAD)" > "$W/levers/$name.run"
    done
  done
fi
node "$ROOT/test/bench/report-levers.mjs" "$OUT" "$LECTURES" "$VARIANTS"
