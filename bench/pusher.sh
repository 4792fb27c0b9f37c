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
# Reports wall time, bytes sent by the origin, bytes written on the hosts,
# origin CPU, and the time of a no-change sync.
#
# Usage: sudo bash bench/pusher.sh      (HOSTS=50 CONC=10 WORK=/var/tmp/ingot-bench-pusher)
set -euo pipefail
HOSTS=${HOSTS:-50}
CONC=${CONC:-10}
WORK=${WORK:-/var/tmp/ingot-bench-pusher}
PAIR=${PAIR_DIR:-/var/cache/ingot-test/pusher}
REPO=$(cd "$(dirname "$0")/.." && pwd)

for t in rsync nginx mmdebstrap zstd; do command -v $t >/dev/null || { echo "needs $t (make deps)"; exit 2; }; done
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

echo "== hosts: $HOSTS at A for each tool (setup, not timed)"
# rsync never writes a file in place (temp file, then rename), so its hosts
# share file inodes with one private copy of A (cp -al); ingot's hosts are
# full copies, since a sync changes owner, mode and mtime in place.
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

WORKERS=$(pgrep -P $NGINX_PID | tr '\n' ' ')
: > "$WORK/nginx/access.log"
c0=$(cpu_of $WORKERS)
t0=$(now)
seq 1 "$HOSTS" | xargs -P "$CONC" -I{} sh -c "'$INGOT' --log-level error agent --config '$WORK/ingot/h{}/agent.yaml' --sync $B > '$WORK/ingot/h{}/result.json'"
t1=$(now)
c1=$(cpu_of $WORKERS)
ING_TIME=$(echo "$t1 - $t0" | bc); ING_CPU=$(echo "$c1 - $c0" | bc)
ING_SENT=$(awk '{s+=$1} END {printf "%.0f", s}' "$WORK/nginx/access.log")
ING_WRITTEN=$(cat "$WORK"/ingot/h*/result.json | awk -F'[:,]' '/"written_bytes"/ {s+=$2} END {printf "%.0f", s}')
ING_DELTAS=$(cat "$WORK"/ingot/h*/result.json | awk -F'[:,]' '/"deltas"/ {s+=$2} END {printf "%.0f", s}')
ING_REUSED=$(cat "$WORK"/ingot/h*/result.json | awk -F'[:,]' '/"reused_bytes"/ {s+=$2} END {printf "%.0f", s}')

run_rsync() { # name flags...
  local name=$1; shift
  local c0 c1 t0 t1
  c0=$(cpu_of $RSYNCD_PID); t0=$(now)
  seq 1 "$HOSTS" | xargs -P "$CONC" -I{} sh -c "rsync $* --delete -H -X --numeric-ids --stats ${RSYNC_EX[*]@Q} rsync://127.0.0.1:$RPORT/b/ '$WORK/$name/h{}/root/' > '$WORK/$name/h{}/stats'"
  t1=$(now); sleep 0.5; c1=$(cpu_of $RSYNCD_PID)
  eval "${name}_TIME=$(echo "$t1 - $t0" | bc)"
  eval "${name}_CPU=$(echo "$c1 - $c0" | bc)"
  eval "${name}_SENT=$(cat "$WORK/$name"/h*/stats | awk '/^Total bytes received/ {gsub(",","",$4); s+=$4} END {printf "%.0f", s}')"
  eval "${name}_WRITTEN=$(cat "$WORK/$name"/h*/stats | awk '/^Total transferred file size/ {gsub(",","",$5); s+=$5} END {printf "%.0f", s}')"
}
run_rsync rsync -a
run_rsync rsyncz -az

# A no-change sync of the B image (~11,700 paths) on one host.
t0=$(now); "$INGOT" --log-level error agent --config "$WORK/ingot/h1/agent.yaml" --sync "$B" > "$WORK/nochange.json"; t1=$(now)
NOCHANGE=$(echo "$t1 - $t0" | bc)
NOCHANGE_SYNC=$(awk -F'[:,]' '/"seconds"/ {print $2}' "$WORK/nochange.json")

# Every host at B? (ingot hosts against the B tree, quick check of three)
for i in 1 2 "$HOSTS"; do
  d=$(rsync -n -a -c -H -X --delete -i --numeric-ids "${RSYNC_EX[@]}" "$PAIR/b/" "$WORK/ingot/h$i/root/" | grep -v '^\.d\.\.t\.\.\.\.\.\. \./$' | grep -v 'cannot delete non-empty directory' | grep -v '^\*deleting *var/lib/$' || true)
  [ -z "$d" ] || { echo "ingot host h$i is not at B:"; echo "$d" | head; exit 1; }
done

mb() { echo "scale=1; $1 / 1000000" | bc; }
per() { echo "scale=0; $1 / $HOSTS" | bc; }
ratio() { echo "scale=3; $1 / $2" | bc; }
echo
echo "== A → B on $HOSTS hosts, $CONC at a time (precomputing the deltas once: ${DELTA_TIME}s)"
printf "%-16s %10s %16s %16s %18s %12s\n" tool wall_s origin_MB/host written_MB/host origin_sent_MB origin_cpu_s
printf "%-16s %10.1f %16s %16s %18s %12s\n" ingot "$ING_TIME" "$(mb $(per $ING_SENT))" "$(mb $(per $ING_WRITTEN))" "$(mb $ING_SENT)" "$ING_CPU"
printf "%-16s %10.1f %16s %16s %18s %12s\n" "rsync -a" "$rsync_TIME" "$(mb $(per $rsync_SENT))" "$(mb $(per $rsync_WRITTEN))" "$(mb $rsync_SENT)" "$rsync_CPU"
printf "%-16s %10.1f %16s %16s %18s %12s\n" "rsync -az" "$rsyncz_TIME" "$(mb $(per $rsyncz_SENT))" "$(mb $(per $rsyncz_WRITTEN))" "$(mb $rsyncz_SENT)" "$rsyncz_CPU"
echo
echo "ingot wall time / rsync -a:        $(ratio "$ING_TIME" "$rsync_TIME")   (target <= 0.25)"
echo "ingot wall time / rsync -az:       $(ratio "$ING_TIME" "$rsyncz_TIME")"
echo "ingot bytes on wire / rsync -az:   $(ratio "$ING_SENT" "$rsyncz_SENT")   (target <= 0.8)"
echo "ingot origin CPU / rsync -az CPU:  $(ratio "$ING_CPU" "$rsyncz_CPU")"
echo "files rebuilt from deltas per host: $((ING_DELTAS / HOSTS))"
echo "chunk bytes read from the host's old files per host: $(mb $(per $ING_REUSED)) MB"
echo "no-change sync of B on one host:   ${NOCHANGE}s for the whole process, ${NOCHANGE_SYNC}s in the sync (target < 0.1 s)"
