#!/usr/bin/env bash
# npm run bench:optimize — on generated lectures (shared/eval/make-lecture.sh), encode with
# Yachay and with the anchor recipes (Kolibri, YouTube-like 360p/144p, expert x264), score every
# encode with the independent scorer (shared/eval/score.sh) and print one table.
#   LECTURES="es:1 en:2 es:3 real:1"   which lectures (lang:seed); real:1 is the held-out lecture
#                               made only of real media (test/corpus/lecture.sh), scored in English
#   BENCH_DIR=/tmp/yachay-bench where lectures, encodes and scores go (reused between runs)
#   ANCHORS=0                   skip re-running the anchor recipes when their scores exist
#   AV1=1                       also the AV1 data saver (optimize.av1=on): a yachay_av1 row per lecture
#   EVAL_DIR=…/shared/eval      the scorer
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EVAL="${EVAL_DIR:-$(cd "$ROOT/.." && pwd)/shared/eval}"
OUT="${BENCH_DIR:-/tmp/yachay-bench}"
LECTURES="${LECTURES:-es:1 en:2 es:3 real:1}"
[ -x "$EVAL/score.sh" ] || { echo "bench: scorer not found at $EVAL (set EVAL_DIR)" >&2; exit 2; }
export BASELINES_PUBLISH=0   # never write into shared/
mkdir -p "$OUT"
for spec in $LECTURES; do
  lang=${spec%%:*}; seed=${spec##*:}
  W="$OUT/$lang-$seed"; mkdir -p "$W/enc" "$W/scores"
  anchor_lang=$lang
  if [ "$lang" = real ]; then
    # baselines.sh reuses a lecture it finds in $W/lecture instead of generating one
    bash "$ROOT/test/corpus/lecture.sh" "$W/lecture"
    anchor_lang=en
  fi
  if [ "${ANCHORS:-1}" = 1 ] || [ ! -f "$W/scores/kolibri_lowres.json" ]; then
    echo "== $lang-$seed: anchors" >&2
    ONLY=kolibri_lowres,yt360,yt144,expert_x264 "$EVAL/baselines.sh" "$anchor_lang" "$seed" "$W" >/dev/null
  fi
  echo "== $lang-$seed: yachay" >&2
  t0=$(date +%s.%N)
  node "$ROOT/bin/yachay.mjs" optimize "$W/lecture/lecture.mp4" --out "$W/enc/yachay" --quiet \
    ${YACHAY_ARGS:-} > "$W/enc/yachay.summary.json"
  t1=$(date +%s.%N)
  "$EVAL/score.sh" "$W/lecture/lecture.mp4" "$W/enc/yachay/master.m3u8" "$W/lecture/groundtruth.json" \
    --variant lowest --no-asr > "$W/scores/yachay.json.new"
  node -e '
    const fs = require("fs"); const [p, t0, t1, sum] = process.argv.slice(1);
    const d = JSON.parse(fs.readFileSync(p + ".new")); const wall = Number(t1) - Number(t0);
    d.recipe = "yachay"; d.encode_wall_s = Math.round(wall * 10) / 10;
    d.encode_x_realtime = Math.round(d.duration_s / wall * 100) / 100;
    d.yachay = JSON.parse(fs.readFileSync(sum));
    fs.writeFileSync(p, JSON.stringify(d, null, 1)); fs.unlinkSync(p + ".new");
  ' "$W/scores/yachay.json" "$t0" "$t1" "$W/enc/yachay.summary.json"
  if [ "${AV1:-0}" = 1 ]; then
    echo "== $lang-$seed: yachay with the AV1 data saver" >&2
    A="$W/enc/yachay-av1"; rm -rf "$A"
    t0=$(date +%s.%N)
    YACHAY_OPTIMIZE_AV1=on node "$ROOT/bin/yachay.mjs" optimize "$W/lecture/lecture.mp4" --out "$A" --quiet \
      ${YACHAY_ARGS:-} > "$A.summary.json"
    t1=$(date +%s.%N)
    if [ -d "$A/v0a" ]; then
      # the referee's ffmpeg re-times AV1 read from HLS (README, AV1): it scores the rendition
      # remuxed with its Opus into one MP4, and the bytes are counted from the HLS files
      ffmpeg -v error -y -i "$A/v0a/index.m3u8" -i "$A/a-opus/index.m3u8" -map 0:v -map 1:a -c copy "$A.mp4"
      "$EVAL/score.sh" "$W/lecture/lecture.mp4" "$A.mp4" "$W/lecture/groundtruth.json" --no-asr > "$W/scores/yachay_av1.json.new"
      node -e '
        const fs = require("fs"); const path = require("path"); const [p, t0, t1, pkg] = process.argv.slice(1);
        const d = JSON.parse(fs.readFileSync(p + ".new")); const wall = Number(t1) - Number(t0);
        const bytes = ["v0a", "a-opus"].flatMap((id) => fs.readdirSync(path.join(pkg, id)).map((f) => fs.statSync(path.join(pkg, id, f)).size)).reduce((a, b) => a + b, 0);
        const rep = JSON.parse(fs.readFileSync(path.join(pkg, "report.json")));
        d.recipe = "yachay_av1"; d.total_bytes = bytes; d.mb_per_min = Math.round(bytes / 1e6 / (d.duration_s / 60) * 10000) / 10000;
        d.encode_wall_s = Math.round(wall * 10) / 10; d.encode_x_realtime = Math.round(d.duration_s / wall * 100) / 100;
        d.av1 = rep.av1; d.timings_ms = rep.timings;
        fs.writeFileSync(p, JSON.stringify(d, null, 1)); fs.unlinkSync(p + ".new");
      ' "$W/scores/yachay_av1.json" "$t0" "$t1" "$A"
    else
      echo "bench: $lang-$seed: the AV1 rendition was dropped: $(node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(process.argv[1])).av1))' "$A/report.json")" >&2
    fi
  fi
done
node "$ROOT/test/bench/report.mjs" "$OUT" $LECTURES
