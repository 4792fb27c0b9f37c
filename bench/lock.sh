#!/usr/bin/env bash
# ingot lock against mmdebstrap --simulate: resolving Debian's minbase set (and the
# server set) from the same suites of the Debian mirror, side by side in one run.
# Prints wall time, peak memory, the ratio, and whether the package sets agree.
# Needs root (mmdebstrap), mmdebstrap and network access to deb.debian.org.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/ingot" ./cmd/ingot

mirrors=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
server_pkgs=python3,openssh-server,rsyslog,cron,less,man-db,iproute2,ca-certificates

measure() { # name cmd... ; prints "seconds maxrss_kib"
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$out/$name.time" "$@" >"$out/$name.log" 2>&1 || {
    echo "$name failed:"; tail -20 "$out/$name.log"; exit 1; }
  cat "$out/$name.time"
}

for set in minimal server; do
  include=()
  [ "$set" = server ] && include=(--include="$server_pkgs")
  read -r it im < <(measure "ingot-$set" "$out/ingot" lock "examples/$set.yaml" -o "$out/$set.lock")
  read -r mt mm < <(measure "mmdebstrap-$set" mmdebstrap --verbose --variant=minbase "${include[@]}" \
    --simulate bookworm "$out/$set.tar" "${mirrors[@]}")
  grep -oP '\{name: \K[^,]+, version: [^,]+' "$out/$set.lock" | sed "s/, version: / /; s/[\"']//g" | sort >"$out/$set.ingot"
  grep '^Inst' "$out/mmdebstrap-$set.log" | awk '{print $2, substr($3,2)}' | sort -u >"$out/$set.mm"
  printf '%-8s ingot lock: %6.2fs %4d MiB   mmdebstrap --simulate: %6.2fs %4d MiB   time ratio %.2fx\n' \
    "$set" "$it" $((im / 1024)) "$mt" $((mm / 1024)) "$(echo "$it / $mt" | bc -l)"
  if diff -u "$out/$set.mm" "$out/$set.ingot" >"$out/$set.diff"; then
    echo "         package sets agree: $(wc -l <"$out/$set.ingot") packages"
  else
    echo "         package sets differ (- mmdebstrap simulation, + ingot):"
    grep '^[-+][^-+]' "$out/$set.diff" | sed 's/^/           /'
  fi
done
