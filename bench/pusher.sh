#!/usr/bin/env bash
# bench/pusher.sh: ingot against rsync for a real security update pushed to
# many hosts on loopback, side by side in one run.
#
# Image A is Debian bookworm (minbase + openssh-server, python3, curl, less,
# procps; ~245 MB, ~11,700 paths), B the same packages with bookworm-updates
# and bookworm-security (21 packages upgraded, ~1,000 files with new content).
# Every host starts at A; each tool brings HOSTS hosts to B with CONC at a
# time. Origins: ingot's store served by nginx (static files), rsync's tree by
# an rsync daemon. Same local-path excludes for both.
#
# ROUNDS rounds, alternating which tool goes first, each on fresh hosts at A.
# Reports, per round and as min-max over rounds: wall time, CPU (the
# clients' user+sys, and the origin's), bytes sent by the origin per host,
# bytes written on the hosts; then a no-change sync of one host, one-shot
# (ingot: the first after the push does the full scan and records the
# quick check; the ones after answer from it) against rsync -a's no-change
# run. The ratios are those of issue 13's table.
#
# Usage: sudo bash bench/pusher.sh      (HOSTS=4 CONC=4 ROUNDS=3 WORK=/var/tmp/ingot-bench-pusher)
set -euo pipefail
HOSTS=${HOSTS:-4}
CONC=${CONC:-4}
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-/var/tmp/ingot-bench-pusher}
PAIR=${PAIR_DIR:-/var/cache/ingot-test/pusher}
REPO=$(cd "$(dirname "$0")/.." && pwd)

for t in rsync nginx mmdebstrap zstd gzip /usr/bin/time bc; do command -v $t >/dev/null || { echo "needs $t (make deps)"; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "run as root (ownership, devices)"; exit 2; }

mkdir -p "$PAIR"
PAIR_DIR=$PAIR sh "$REPO/pusher/testdata/debian-pair.sh"
rm -rf "$WORK"; mkdir -p "$WORK"
mkdir -p "$WORK/bin"; INGOT=$WORK/bin/ingot
(cd "$REPO" && go build -o "$INGOT" ./cmd/ingot)

EXCLUDES=(/etc/resolv.conf /etc/hostname /etc/hosts /etc/machine-id '/etc/ssh/ssh_host_*'
  /var/log /var/lib/ingot-agent /home /root /tmp /srv)
RSYNC_EX=(); for e in "${EXCLUDES[@]}"; do RSYNC_EX+=(--exclude "$e"); done

now() { date +%s.%N; }
cpu_of() { # utime+stime(+children) of pids, in seconds
  local t=0; for p in "$@"; do
    t=$(( t + $(awk '{print $14+$15+$16+$17}' /proc/$p/stat) )); done
  echo "scale=2; $t / $(getconf CLK_TCK)" | bc; }
port() { # a free port on loopback
  local p; while :; do p=$(shuf -i 20000-60000 -n 1)
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }; done; }

echo "== store: import A and B, sign, precompute deltas"
STORE=$WORK/store
"$INGOT" key gen "$WORK/release" >/dev/null
A=$("$INGOT" --store "$STORE" image import "$PAIR/a" --name debian:a)
B=$("$INGOT" --store "$STORE" image import "$PAIR/b" --name debian:b)
for r in debian:a debian:b; do "$INGOT" --store "$STORE" image sign $r --key "$WORK/release.key" >/dev/null; done
t0=$(now); "$INGOT" --store "$STORE" image delta debian:a debian:b; t1=$(now)
DELTA_TIME=$(echo "$t1 - $t0" | bc)

echo "== origins: nginx (static store) and rsync daemon"
NPORT=$(port); RPORT=$(port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
user root;
worker_processes 2;
error_log $WORK/nginx/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  log_format bytes '\$bytes_sent';
  access_log $WORK/nginx/access.log bytes;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  sendfile on; keepalive_requests 100000;
  server { listen 127.0.0.1:$NPORT; root $STORE; autoindex off; }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -g 'daemon off;' & NGINX_PID=$!
cat > "$WORK/rsyncd.conf" <<RSD
port = $RPORT
address = 127.0.0.1
use chroot = no
max connections = 0
pid file = $WORK/rsyncd.pid
[b]
  path = $PAIR/b
  read only = yes
  uid = root
  gid = root
RSD
rsync --daemon --no-detach --config="$WORK/rsyncd.conf" & RSYNCD_PID=$!
trap 'kill $NGINX_PID $RSYNCD_PID 2>/dev/null || true' EXIT
sleep 1

# setup_hosts: fresh hosts at A for each tool (not timed). rsync never
# writes a file in place (temp file, then rename), so its hosts share file
# inodes with one private copy of A (cp -al); ingot's hosts are full copies,
# since a sync changes owner, mode and mtime in place.
setup_hosts() {
  rm -rf "$WORK/ingot" "$WORK/rsync" "$WORK/rsyncz" "$WORK/a-for-rsync"
  cp -a "$PAIR/a" "$WORK/a-for-rsync"
  for i in $(seq 1 "$HOSTS"); do
    h=$WORK/ingot/h$i; mkdir -p "$h"; cp -a "$PAIR/a" "$h/root"
    cat > "$h/agent.yaml" <<CFG
name: h$i
root: $h/root
stores: ["http://127.0.0.1:$NPORT"]
trusted_keys: [$WORK/release.pub]
CFG
    # The host was installed from A: the agent records that (and its stat cache) once.
    "$INGOT" --store "$STORE" --log-level error agent --config "$h/agent.yaml" --sync "$A" > /dev/null
    for t in rsync rsyncz; do mkdir -p "$WORK/$t/h$i"; cp -al "$WORK/a-for-rsync" "$WORK/$t/h$i/root"; done
  done
  sync
}

# timed OUTVAR CMD...: runs CMD, sets OUTVAR_WALL and OUTVAR_CPU (user+sys
# of CMD and everything it waited for).
timed() {
  local v=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.out" "$@"
  read -r w u s < "$WORK/time.out"
  eval "${v}_WALL=$w; ${v}_CPU=$(echo "$u + $s" | bc)"
}

run_ingot() {
  local WORKERS c0 c1
  WORKERS=$(pgrep -P $NGINX_PID | tr '\n' ' ')
  : > "$WORK/nginx/access.log"
  c0=$(cpu_of $WORKERS)
  timed ING sh -c "seq 1 $HOSTS | xargs -P $CONC -I{} sh -c \"'$INGOT' --log-level error agent --config '$WORK/ingot/h{}/agent.yaml' --sync $B > '$WORK/ingot/h{}/result.json'\""
  c1=$(cpu_of $WORKERS)
  ING_OCPU=$(echo "$c1 - $c0" | bc)
  ING_SENT=$(awk '{s+=$1} END {printf "%.0f", s}' "$WORK/nginx/access.log")
  ING_REQS=$(wc -l < "$WORK/nginx/access.log")
  ING_WRITTEN=$(cat "$WORK"/ingot/h*/result.json | awk -F'[:,]' '/"written_bytes"/ {s+=$2} END {printf "%.0f", s}')
  ING_DELTAS=$(cat "$WORK"/ingot/h*/result.json | awk -F'[:,]' '/"deltas"/ {s+=$2} END {printf "%.0f", s}')
  grep -q '"ok": true' "$WORK/ingot/h1/result.json" || { echo "ingot sync failed:"; cat "$WORK/ingot/h1/result.json"; exit 1; }
}

run_rsync() { # name flags...
  local name=$1; shift
  local c0 c1
  c0=$(cpu_of $RSYNCD_PID)
  timed "$name" sh -c "seq 1 $HOSTS | xargs -P $CONC -I{} sh -c \"rsync $* --delete -H -X --numeric-ids --stats ${RSYNC_EX[*]@Q} rsync://127.0.0.1:$RPORT/b/ '$WORK/$name/h{}/root/' > '$WORK/$name/h{}/stats'\""
  sleep 0.5; c1=$(cpu_of $RSYNCD_PID)
  eval "${name}_OCPU=$(echo "$c1 - $c0" | bc)"
  eval "${name}_SENT=$(cat "$WORK/$name"/h*/stats | awk '/^Total bytes received/ {gsub(",","",$4); s+=$4} END {printf "%.0f", s}')"
  eval "${name}_WRITTEN=$(cat "$WORK/$name"/h*/stats | awk '/^Total transferred file size/ {gsub(",","",$5); s+=$5} END {printf "%.0f", s}')"
}

mb() { echo "scale=2; $1 / 1000000" | bc; }
per() { echo "scale=0; $1 / $HOSTS" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
RES=$WORK/rounds.tsv
: > "$RES"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: $HOSTS hosts at A for each tool (setup, not timed)"
  setup_hosts
  if [ $((r % 2)) = 1 ]; then
    run_ingot; run_rsync rsync -a; run_rsync rsyncz -az
  else
    run_rsync rsyncz -az; run_rsync rsync -a; run_ingot
  fi
  # No-change syncs of one host, one-shot: ingot's first after the push
  # (full scan, records the quick check), then three more; rsync -a's run
  # on a host already at B.
  timed NC0 "$INGOT" --log-level error agent --config "$WORK/ingot/h1/agent.yaml" --sync "$B" > /dev/null
  NCQ=""; NCQC=""
  for k in 1 2 3; do
    timed NC "$INGOT" --log-level error agent --config "$WORK/ingot/h1/agent.yaml" --sync "$B" > "$WORK/nochange.json"
    grep -q '"changed": 0' "$WORK/nochange.json" || { echo "no-change sync changed something"; cat "$WORK/nochange.json"; exit 1; }
    NCQ="$NCQ $NC_WALL"; NCQC="$NCQC $NC_CPU"
  done
  timed RNC rsync -a --delete -H -X --numeric-ids "${RSYNC_EX[@]}" rsync://127.0.0.1:$RPORT/b/ "$WORK/rsync/h1/root/"
  # Every host at B? (ingot hosts against the B tree, two of them)
  for i in 1 "$HOSTS"; do
    d=$(rsync -n -a -c -H -X --delete -i --numeric-ids "${RSYNC_EX[@]}" "$PAIR/b/" "$WORK/ingot/h$i/root/" | grep -v '^\.d\.\.t\.\.\.\.\.\. \./$' | grep -v 'cannot delete non-empty directory' | grep -v '^\*deleting *var/lib/$' || true)
    [ -z "$d" ] || { echo "ingot host h$i is not at B:"; echo "$d" | head; exit 1; }
  done
  NCQMIN=$(echo $NCQ | tr ' ' '\n' | sort -n | head -1); NCQCMIN=$(echo $NCQC | tr ' ' '\n' | sort -n | head -1)
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$r" \
    "$ING_WALL" "$ING_CPU" "$(per $ING_SENT)" "$rsync_WALL" "$rsync_CPU" "$(per $rsync_SENT)" "$rsyncz_WALL" "$rsyncz_CPU" "$(per $rsyncz_SENT)" \
    "$NC0_WALL" "$NCQMIN" "$NCQCMIN" "$RNC_WALL" "$RNC_CPU" "$ING_OCPU" "$rsyncz_OCPU" "$ING_REQS" >> "$RES"
  echo "round $r: ingot ${ING_WALL}s (cpu ${ING_CPU}s, $(mb $(per $ING_SENT)) MB/host, $((ING_DELTAS / HOSTS)) deltas/host, $ING_REQS requests); rsync -a ${rsync_WALL}s (cpu ${rsync_CPU}s, $(mb $(per $rsync_SENT)) MB/host); rsync -az ${rsyncz_WALL}s (cpu ${rsyncz_CPU}s, $(mb $(per $rsyncz_SENT)) MB/host); no-change: ingot first ${NC0_WALL}s, then${NCQ}s (cpu${NCQC}s); rsync -a ${RNC_WALL}s (cpu ${RNC_CPU}s)"
done

# range COL: min-max of a column of the rounds; rng COL1 COL2: of COL1/COL2.
range() { awk -F'\t' -v c="$1" 'NR==1{lo=hi=$c} {if($c<lo)lo=$c; if($c>hi)hi=$c} END{printf "%s–%s", lo, hi}' "$RES"; }
rng() { awk -F'\t' -v a="$1" -v b="$2" 'NR==1{lo=hi=$a/$b} {r=$a/$b; if(r<lo)lo=r; if(r>hi)hi=r} END{printf "%.2f–%.2f", lo, hi}' "$RES"; }
rngmb() { awk -F'\t' -v c="$1" 'NR==1{lo=hi=$c} {if($c<lo)lo=$c; if($c>hi)hi=$c} END{printf "%.2f–%.2f MB", lo/1e6, hi/1e6}' "$RES"; }
echo
echo "== A → B on $HOSTS hosts, $CONC at a time, $ROUNDS rounds (deltas precomputed once: ${DELTA_TIME}s)"
echo "| work | ingot | peer | ratio (per round) | target |"
echo "|---|---|---|---|---|"
echo "| push wall | $(range 2) s, CPU $(range 3) s | rsync -a daemon: $(range 5) s, CPU $(range 6) s | $(rng 2 5) wall, $(rng 3 6) CPU | ≤ 0.5 wall |"
echo "| bytes from the origin per host | $(rngmb 4) | rsync -az: $(rngmb 10); rsync -a: $(rngmb 7) | $(rng 4 10) of -az | ≤ 0.25 |"
echo "| no-change sync of one host, one-shot | quick: $(range 12) s (CPU $(range 13) s); the first after a push (full): $(range 11) s | rsync -a: $(range 14) s, CPU $(range 15) s | $(rng 12 14) (first: $(rng 11 14)) | ≤ 0.1 s |"
echo "origin CPU: ingot (nginx) $(range 16) s, rsync -az (daemon) $(range 17) s; requests to nginx per push: $(range 18)"
