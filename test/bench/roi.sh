#!/usr/bin/env bash
# Region of interest on a talking head: bytes, frame SSIM and region SSIM of one shot, today's
# encode against the ways of sparing the background (the table in daemon/media/roi.ts).
# Clip: the astronaut photo moving over a noisy testsrc2, 6 s 640x360 15 fps; shot 0 (0-2 s)
# has no region, shot 1 (2-6 s) has the face box. v0 settings: QP 37, preset medium.
# Usage: bash test/bench/roi.sh   (about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff() { ffmpeg -hide_banner -nostdin -v error -y "$@"; }

ff -f lavfi -i testsrc2=s=640x360:r=15:d=6 -loop 1 -framerate 15 -t 6 -i test/fixtures/astronaut-256.png \
  -filter_complex "[0:v]hue=s=0.5,noise=alls=10:allf=t+u[bg];[1:v]format=yuv420p,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s=192x192:fps=15[face];[bg][face]overlay=x='200+20*t':y='60+8*sin(2*t)':eval=frame,format=yuv420p" \
  -c:v libx264 -preset ultrafast -qp 0 "$tmp/src.mkv"

# the face box over shot 1 grown to macroblocks, as roiPixels() does: w:h:x:y
RX=240; RY=48; RW=272; RH=224
IN="gte(t,1.9999)*lt(t,6.9999)"
# the v0 branch and x264 options of encodeArgs() for this two-shot plan (every frame kept at 15 fps)
X264="scenecut=0:pbratio=4.0:psy=0:me=umh:subme=9:trellis=2:ref=6:zones=0,29,q=37/30,89,q=37"

n=0
enc() { # label, filters after format=yuv420p, rate control, extra x264 options
  local t0 f; t0=$(date +%s.%N); n=$((n + 1)); f=e$n
  ff -threads 2 -i "$tmp/src.mkv" -filter_complex "[0:v:0]fps=15,scale=640:360:flags=lanczos,format=yuv420p$2[o]" \
    -map '[o]' -an -fps_mode vfr -c:v libx264 -preset medium $3 -profile:v high -level:v 4.0 -g 100000 -keyint_min 1 -bf 3 \
    -x264-params "$X264$4" -force_key_frames 0,2 -pix_fmt yuv420p "$tmp/$f.mp4"
  local secs; secs=$(echo "$(date +%s.%N) - $t0" | bc)
  local sizes; sizes=$(ffprobe -v error -select_streams v:0 -show_entries frame=pkt_size -of csv=p=0 "$tmp/$f.mp4" | grep -E '^[0-9]' | cut -d, -f1)
  local b0 b1; b0=$(head -30 <<<"$sizes" | paste -sd+ | bc); b1=$(tail -n +31 <<<"$sizes" | paste -sd+ | bc)
  ssim() { ffmpeg -hide_banner -nostdin -i "$tmp/$1.mp4" -i "$tmp/src.mkv" -filter_complex \
    "[0:v]trim=start_frame=$2:end_frame=$3,setpts=PTS-STARTPTS$4[a];[1:v]trim=start_frame=$2:end_frame=$3,setpts=PTS-STARTPTS$4[b];[a][b]ssim" \
    -f null - 2>&1 | grep -o 'All:[0-9.]*' | tail -1 | cut -d: -f2; }
  printf '%-34s shot0 %6d B  ssim %s | shot1 %6d B  frame %s  region %s  (%.1f s)\n' "$1" "$b0" "$(ssim "$f" 0 30 '')" \
    "$b1" "$(ssim "$f" 30 90 '')" "$(ssim "$f" 30 90 ",crop=$RW:$RH:$RX:$RY")" "$secs"
}

# x264 ROI: ffmpeg's addroi gives x264 per-macroblock QP offsets (qoffset * 51); the first
# region listed wins, so the face goes before the whole frame; sidedata deletes them outside shot 1
roi() { echo ",addroi=$RX:$RY:$RW:$RH:qoffset=$1/51,addroi=0:0:iw:ih:qoffset=$2/51,sidedata=mode=delete:type=REGIONS_OF_INTEREST:enable='not($IN)'"; }
# blur outside the face, only inside shot 1: the branch roiForRendition() writes
blur() { echo ",split=2[b][c];[c]crop=$RW:$RH:$RX:$RY[r];[b]gblur=sigma=$1:enable='$IN'[m];[m][r]overlay=$RX:$RY:enable='$IN'"; }

enc 'today: CQP 37' '' '-qp 37' ''
enc 'CQP 37 + addroi -5 +6' "$(roi -5 6)" '-qp 37' ''
enc 'CRF + AQ 0 + addroi -4 +8' "$(roi -4 8)" '-crf 37' ':aq-mode=1:aq-strength=0:mbtree=0'
enc 'CRF + AQ eps, no region' '' '-crf 37' ':aq-mode=1:aq-strength=0.0001:mbtree=0'
for o in '-2 8' '-4 8' '-4 4'; do
  enc "CRF + AQ eps + addroi ${o/ / +}" "$(roi $o)" '-crf 37' ':aq-mode=1:aq-strength=0.0001:mbtree=0'
done
for s in 0.8 1 1.5; do enc "CQP 37 + blur outside, sigma $s" "$(blur $s)" '-qp 37' ''; done
