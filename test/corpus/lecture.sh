#!/usr/bin/env bash
# A held-out lecture made only of real media, for bench:optimize and the independent scorer
# (shared/eval/score.sh): lecture.mp4 (1280x720, 30 fps CFR, AAC 48 kHz mono) and a
# groundtruth.json in the scorer's format (segments with kind/start/end/lines, speech[]).
#   bash test/corpus/lecture.sh OUT_DIR [CORPUS_DIR]
# Segments: a manual page with a wandering pointer read over by a LibriVox reader; a film
# trailer; pedestrians past a fixed camera; a talking head (real face) with the same reader;
# a manual page filmed off a projection, in silence.
# Slide lines are tesseract's reading of the lossless page render: the scorer's word_acc_ratio
# divides the encode's reading by the source's, so the reference only has to be the same text
# the source shows. Speech intervals are the LibriVox sentence files, with their transcription.
set -euo pipefail
OUT=${1:?usage: lecture.sh OUT_DIR [CORPUS_DIR]}
DIR=${2:-${YACHAY_CORPUS:-$HOME/.cache/yachay-corpus}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$HERE/build.sh" "$DIR" >&2
mkdir -p "$OUT"
[ -s "$OUT/lecture.mp4" ] && [ -s "$OUT/groundtruth.json" ] && { echo "lecture: cached $OUT" >&2; exit 0; }
SPX=$DIR/root/usr/share/pocketsphinx/test/data/librivox
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# every piece the same: 1280x720 (letterboxed), 30 fps CFR, mono 48 kHz; silence where none
norm() { # in out seconds [audio-file]
  local vf="scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30,format=yuv420p"
  if [ -n "${4:-}" ]; then
    "${FF[@]}" -i "$1" -i "$4" -t "$3" -map 0:v -map 1:a -vf "$vf" -af "aresample=48000,pan=mono|c0=c0,apad" \
      -c:v libx264 -preset veryfast -crf 14 -c:a pcm_s16le "$2"
  else
    "${FF[@]}" -i "$1" -f lavfi -i anullsrc=r=48000:cl=mono -t "$3" -map 0:v -map 1:a -vf "$vf" \
      -c:v libx264 -preset veryfast -crf 14 -c:a pcm_s16le "$2"
  fi
}
echo "lecture: assembling from $DIR/clips" >&2
norm "$DIR/clips/screen.mp4" "$T/1.mkv" 24.7 "$DIR/work/librivox.wav"
"${FF[@]}" -i "$DIR/clips/film.mp4" -t 20 -vf "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30,format=yuv420p" \
  -af "aresample=48000,pan=mono|c0=0.5*c0+0.5*c1,apad" -t 20 -c:v libx264 -preset veryfast -crf 14 -c:a pcm_s16le "$T/2.mkv"
norm "$DIR/clips/walking.mp4" "$T/3.mkv" 15
norm "$DIR/clips/talking-head.mp4" "$T/4.mkv" 20 "$DIR/work/librivox.wav"
norm "$DIR/clips/projected.mp4" "$T/5.mkv" 15
printf "file '%s'\n" "$T"/{1,2,3,4,5}.mkv > "$T/list.txt"
"${FF[@]}" -f concat -safe 0 -i "$T/list.txt" -c:v libx264 -preset veryfast -crf 16 -pix_fmt yuv420p -r 30 \
  -c:a aac -b:a 192k -ar 48000 -ac 1 -movflags +faststart "$T/lecture.mp4"

tesseract "$DIR/work/page1.png" "$T/page1" --psm 3 -l eng >/dev/null 2>&1
tesseract "$DIR/work/page2.png" "$T/page2" --psm 3 -l eng >/dev/null 2>&1
for f in "$SPX"/*.wav; do printf '%s %s\n' "$(basename "$f" .wav)" "$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f")"; done > "$T/durations.txt"
python3 - "$T" "$SPX/transcription" > "$T/groundtruth.json" <<'EOF'
import json, re, sys
tmp, trans = sys.argv[1], sys.argv[2]
def lines(name):
    out = []
    for l in open(f"{tmp}/{name}.txt", encoding="utf-8"):
        l = " ".join(l.split())
        # keep prose lines: three or more words made of letters (drops menus, icons, numbers)
        if len(re.findall(r"[A-Za-z]{2,}", l)) >= 3:
            out.append(dict(text=l, role="body", px=14))
    return out
text = {m.group(2): m.group(1).strip() for m in re.finditer(r"<s>(.*?)</s> \((.*?)\)", open(trans).read())}
durs = [(n, float(d)) for n, d in (l.split() for l in open(f"{tmp}/durations.txt"))]
spans = [("slide", 24.7, "page1"), ("motion", 20.0, None), ("motion", 15.0, None), ("talking_head", 20.0, None), ("slide", 15.0, "page2")]
segs, speech, t = [], [], 0.0
for i, (kind, d, page) in enumerate(spans):
    ls = lines(page) if page else []
    segs.append(dict(id=i, kind=kind, start=round(t, 4), end=round(t + d, 4), duration=d, frames=int(round(d * 30)),
                     lines=ls, text=" ".join(l["text"] for l in ls), ocr_times=[round(t + d / 2, 3)] if page else []))
    if i in (0, 3):  # the LibriVox reader, sentence after sentence from the segment's start
        s = t
        for n, dd in durs:
            if s + dd > t + d: break
            speech.append(dict(start=round(s, 3), end=round(s + dd, 3), text=text.get(n, ""), segment=i))
            s += dd
    t += d
gt = dict(format="lecture-groundtruth/1", lang="en", seed=0, width=1280, height=720, fps=30, sample_rate=48000,
          duration=round(t, 4), frames=int(round(t * 30)), video="lecture.mp4", ocr_lang="eng",
          segments=segs, speech=speech, music=[], silence=[], source="test/corpus (real media from Debian packages)")
print(json.dumps(gt, indent=1))
EOF
mv "$T/lecture.mp4" "$OUT/lecture.mp4"
mv "$T/groundtruth.json" "$OUT/groundtruth.json"
echo "lecture: $OUT/lecture.mp4 ($(ffprobe -v error -show_entries format=duration -of csv=p=0 "$OUT/lecture.mp4") s) and groundtruth.json" >&2
