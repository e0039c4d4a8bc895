#!/usr/bin/env bash
# npm run bench:serve — Yachay's LAN server against Debian's nginx on the same real HLS package.
#
# Makes a ~20 s clip with ffmpeg, packages it as HLS fMP4, serves the folder from Yachay's
# HttpService and from nginx (foreground, own prefix and config, one worker so both use one
# core), each on a free loopback port, and loads each with wrk for DURATION seconds over CONNS
# connections cycling through playlists, init and segments. Prints one table; asserts nothing.
#   CONNS=200 DURATION=10 ROUNDS=3 THREADS=2 NGINX_SENDFILE=on bash test/bench/serve.sh
# NGINX_SENDFILE=off makes nginx copy file bytes through user space as Yachay does. Each Yachay
# round also reports the longest event-loop delay it saw (ms).
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNS=${CONNS:-200}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
NGINX_SENDFILE=${NGINX_SENDFILE:-on}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  echo "installing nginx and wrk (Debian packages)…" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y nginx wrk >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y nginx wrk >/dev/null; }
fi
need ffmpeg || { echo "ffmpeg missing: sudo apt-get install -y ffmpeg" >&2; exit 69; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d /tmp/yachay-bench-serve.XXXXXX)
YPID=""; NPID=""
cleanup() {
  [ -n "$YPID" ] && kill "$YPID" 2>/dev/null && wait "$YPID" 2>/dev/null
  [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"

# --- a real small HLS package: one 360p rendition + AAC, 2 s fMP4 segments -----------------
PKG="$WORK/store/bench"
mkdir -p "$PKG/v0"
ffmpeg -hide_banner -nostdin -v error -y \
  -f lavfi -i "testsrc2=s=640x360:r=25:d=20" -f lavfi -i "sine=f=440:r=48000:d=20" \
  -c:v libx264 -preset veryfast -g 50 -pix_fmt yuv420p -b:v 600k -c:a aac -b:a 64k -shortest \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 \
  -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$PKG/v0/seg_%05d.m4s" "$PKG/v0/index.m3u8"
printf '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360\nv0/index.m3u8\n' > "$PKG/master.m3u8"
chmod -R a+rX "$WORK"

# requests cycle: master, playlist, init, then every segment (what a player asks for)
{
  echo 'local paths = {'
  echo '"/media/bench/master.m3u8", "/media/bench/v0/index.m3u8", "/media/bench/v0/init.mp4",'
  for s in "$PKG"/v0/seg_*.m4s; do echo "\"/media/bench/v0/$(basename "$s")\","; done
  echo '}'
  cat <<'LUA'
local i = 0
local counter = 0
setup = function(thread) thread:set("offset", counter); counter = counter + 7 end
init = function() i = tonumber(offset) or 0 end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.3f %.3f %d %.1f\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, summary.bytes / (summary.duration / 1e6) / 1e6))
end
LUA
} > "$WORK/paths.lua"

SEGS=$(ls "$PKG"/v0/seg_*.m4s | wc -l)
SEGBYTES=$(du -cb "$PKG"/v0/seg_*.m4s | tail -1 | cut -f1)

freeport() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
tree_rss_kb() { local t=0; for p in "$@"; do t=$((t + $(rss_kb "$p"))); done; echo "$t"; }

# --- Yachay ----------------------------------------------------------------------------------
YPORT=$(freeport)
mkdir -p "$WORK/db"
node --import tsx test/bench/serve-yachay.mts "$WORK/store" "$YPORT" "$WORK/db" > "$WORK/yachay.out" 2> "$WORK/yachay.err" &
YPID=$!
for _ in $(seq 1 100); do grep -q READY "$WORK/yachay.out" 2>/dev/null && break; sleep 0.1; done
grep -q READY "$WORK/yachay.out" || { echo "yachay did not start:"; cat "$WORK/yachay.err"; exit 1; }

# --- nginx -----------------------------------------------------------------------------------
NPORT=$(freeport)
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile $NGINX_SENDFILE; tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }
  server {
    listen 127.0.0.1:$NPORT;
    location /media/ {
      alias $WORK/store/;
      location ~ \.m3u8\$ { add_header Cache-Control no-cache; }
      location ~ \.(m4s|mp4)\$ { add_header Cache-Control "public, max-age=31536000, immutable"; }
    }
  }
}
CONF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2> "$WORK/nginx.err" &
NPID=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$NPORT/media/bench/master.m3u8" 2>/dev/null && break; sleep 0.1; done

# sanity: both serve the same bytes
for p in master.m3u8 v0/init.mp4 v0/seg_00001.m4s; do
  a=$(curl -fsS "http://127.0.0.1:$YPORT/media/bench/$p" | md5sum); b=$(curl -fsS "http://127.0.0.1:$NPORT/media/bench/$p" | md5sum)
  [ "$a" = "$b" ] || { echo "yachay and nginx differ on $p" >&2; exit 1; }
done

# --- load --------------------------------------------------------------------------------------
# This machine's throughput swings by ±30% from one 10 s run to the next (shared cores), so the
# servers take turns for ROUNDS rounds and the table shows each one's median round.
run() { # name port round pids…
  local name=$1 port=$2 round=$3; shift 3
  local peak
  local loop=-
  [ "$name" = yachay ] && loop_delay >/dev/null   # starts this round's event-loop histogram
  ( while true; do tree_rss_kb "$@"; sleep 0.25; done ) > "$WORK/$name.$round.rss" &
  local sampler=$!
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/paths.lua" "http://127.0.0.1:$port" > "$WORK/$name.$round.wrk"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  peak=$(sort -n "$WORK/$name.$round.rss" | tail -1)
  [ "$name" = yachay ] && loop=$(loop_delay)
  echo "$name $(grep '^RESULT' "$WORK/$name.$round.wrk" | cut -d' ' -f2-) $peak $loop" >> "$WORK/rounds.txt"
}
loop_delay() { # Yachay's longest event-loop delay (ms) since the last call (serve-yachay.mts, SIGUSR2)
  local before; before=$(grep -c '^LOOP' "$WORK/yachay.out" || true)
  kill -USR2 "$YPID"
  for _ in $(seq 1 50); do [ "$(grep -c '^LOOP' "$WORK/yachay.out" || true)" -gt "$before" ] && break; sleep 0.02; done
  grep '^LOOP' "$WORK/yachay.out" | tail -1 | cut -d' ' -f2
}
NGINX_PIDS="$NPID $(pgrep -P "$NPID" | tr '\n' ' ')"
for port in "$YPORT" "$NPORT"; do wrk -t2 -c4 -d2s -s "$WORK/paths.lua" "http://127.0.0.1:$port" > /dev/null; done   # warm-up
sleep 1
Y_IDLE=$(tree_rss_kb "$YPID")
# shellcheck disable=SC2086
N_IDLE=$(tree_rss_kb $NGINX_PIDS)
: > "$WORK/rounds.txt"
for round in $(seq 1 "$ROUNDS"); do
  run yachay "$YPORT" "$round" "$YPID"
  # shellcheck disable=SC2086
  run nginx "$NPORT" "$round" $NGINX_PIDS
done
echo "rounds (req/s p50 p99 errors MB/s RSS-load-KB event-loop-max-ms), nginx sendfile $NGINX_SENDFILE:"; sed 's/^/  /' "$WORK/rounds.txt"
median() { # name column → the median of that column over the server's rounds
  awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$WORK/rounds.txt" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
row() { # name idle-kb → one line: name req/s p50 p99 errors MB/s idle peak
  local n=$1
  echo "$n $(median "$n" 2) $(median "$n" 3) $(median "$n" 4) $(awk -v n="$n" '$1 == n { e += $5 } END { print e + 0 }' "$WORK/rounds.txt") $(median "$n" 6) $2 $(awk -v n="$n" '$1 == n && $7 > m { m = $7 } END { print m + 0 }' "$WORK/rounds.txt")"
}
Y=$(row yachay "$Y_IDLE")
N=$(row nginx "$N_IDLE")

echo
echo "HLS package: $SEGS fMP4 segments, $((SEGBYTES / 1024)) KiB; wrk $THREADS threads, $CONNS connections, $ROUNDS rounds of ${DURATION}s each (median shown), loopback, $(nproc) CPUs"
echo "$Y
$N" | awk '
  { name[NR]=$1; rps[NR]=$2; p50[NR]=$3; p99[NR]=$4; err[NR]=$5; mbs[NR]=$6; idle[NR]=$7; load[NR]=$8 }
  END {
    printf "%-8s %10s %9s %9s %9s %7s %10s %10s\n", "server", "req/s", "MB/s", "p50 ms", "p99 ms", "errors", "RSS idle", "RSS load"
    for (i = 1; i <= NR; i++)
      printf "%-8s %10.0f %9.1f %9.2f %9.2f %7d %8.1f MB %7.1f MB\n", name[i], rps[i], mbs[i], p50[i], p99[i], err[i], idle[i]/1024, load[i]/1024
    printf "%-8s %9.2fx %8.2fx %8.2fx %8.2fx\n", "y/nginx", rps[1]/rps[2], mbs[1]/mbs[2], p50[1]/p50[2], p99[1]/p99[2]
  }'
