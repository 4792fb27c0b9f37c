#!/usr/bin/env bash
# Builder benchmark: `ingot build` against `mmdebstrap --variant=minbase`,
# side by side in one run, on the same package sets from the same mirror
# (the host's apt sources), both with SOURCE_DATE_EPOCH, with a cold and a
# warm package cache. Prints wall time, peak RSS (/usr/bin/time -v), the
# ratio ingot/mmdebstrap with a warm cache, and whether two builds of each
# tool gave byte-identical tars.
#
#   sudo bash bench/builder.sh            # both sets
#   SETS=minimal sudo bash bench/builder.sh
#
# Needs root, network to the mirror, mmdebstrap, zstd and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/builder.sh needs root" >&2; exit 2; }
for p in mmdebstrap /usr/bin/time; do
  command -v "$p" >/dev/null || { echo "bench/builder.sh needs $p (apt-get install mmdebstrap time)" >&2; exit 2; }
done
SETS=${SETS:-"minimal server"}
W=$(mktemp -d /var/tmp/ingot-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
go build -o "$W/ingot" ./cmd/ingot
INGOT="$W/ingot"

# measure NAME CMD...: runs CMD under GNU time; records wall seconds and peak RSS MiB.
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$W/$name.time" "$@" >"$W/$name.out" 2>"$W/$name.err" || {
    echo "FAILED: $*" >&2; tail -20 "$W/$name.err" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$W/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$W/$name.time")
  echo "$wall $rss" >"$W/$name.m"
}
get() { cut -d' ' -f"$2" "$W/$1.m"; }

printf '%-8s %-11s %-5s %9s %9s\n' set tool cache wall_s rss_MiB
for set in $SETS; do
  d="$W/$set"; mkdir -p "$d"
  cp "examples/$set.yaml" "$d/"
  "$INGOT" lock "$d/$set.yaml" >/dev/null
  sde=$(awk '/^source-date-epoch:/ {print $2}' "$d/$set.lock")
  # The spec's package list and excludes, for mmdebstrap.
  pkgs=$(awk '/^packages:/{f=1;next} /^[a-z]/{f=0} f && /^  - /{print $2}' "$d/$set.yaml" | paste -sd, -)
  dpkgopts=()
  while read -r g; do [ -n "$g" ] && dpkgopts+=("--dpkgopt=path-exclude=$g"); done < <(awk '/^exclude:/{f=1;next} /^[a-z]/{f=0} f && /^  - /{print $2}' "$d/$set.yaml")
  while read -r g; do [ -n "$g" ] && dpkgopts+=("--dpkgopt=path-include=$g"); done < <(awk '/^keep:/{f=1;next} /^[a-z]/{f=0} f && /^  - /{print $2}' "$d/$set.yaml")
  include=(); [ -n "$pkgs" ] && include=("--include=$pkgs")

  # ingot: cold cache (empty), then warm; a fresh store each time.
  for cache in cold warm; do
    rm -rf "$d/store-$cache"
    [ $cache = cold ] && rm -rf "$d/ingot-cache"
    measure "$set-ingot-$cache" env INGOT_CACHE="$d/ingot-cache" INGOT_STORE="$d/store-$cache" \
      "$INGOT" build "$d/$set.yaml" --progress none -o "$d/ingot-$cache.tar"
    printf '%-8s %-11s %-5s %9s %9s\n' "$set" ingot $cache "$(get "$set-ingot-$cache" 1)" "$(get "$set-ingot-$cache" 2)"
  done
  # mmdebstrap: cold (downloads), then warm from the .debs the cold run kept.
  mkdir -p "$d/mm-cache"
  for cache in cold warm; do
    [ $cache = cold ] && rm -rf "$d/mm-cache" && mkdir -p "$d/mm-cache"
    measure "$set-mmdebstrap-$cache" env SOURCE_DATE_EPOCH="$sde" mmdebstrap --variant=minbase --quiet \
      "${include[@]}" "${dpkgopts[@]}" --skip=essential/unlink \
      --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
      --setup-hook="sync-in $d/mm-cache /var/cache/apt/archives/" \
      --customize-hook="sync-out /var/cache/apt/archives $d/mm-cache" \
      bookworm "$d/mm-$cache.tar"
    printf '%-8s %-11s %-5s %9s %9s\n' "$set" mmdebstrap $cache "$(get "$set-mmdebstrap-$cache" 1)" "$(get "$set-mmdebstrap-$cache" 2)"
  done
  ratio=$(awk -v a="$(get "$set-ingot-warm" 1)" -v b="$(get "$set-mmdebstrap-warm" 1)" 'BEGIN{printf "%.2f", a/b}')
  ir=no; cmp -s "$d/ingot-cold.tar" "$d/ingot-warm.tar" && ir=yes
  mr=no; cmp -s "$d/mm-cold.tar" "$d/mm-warm.tar" && mr=yes
  echo "$set: warm-cache wall time ingot/mmdebstrap = $ratio (target <= 0.50); peak RSS ingot $(get "$set-ingot-warm" 2) MiB (target <= 500)"
  echo "$set: two builds byte-identical: ingot $ir, mmdebstrap $mr"
  if [ $mr = no ]; then
    mkdir -p "$d/x1" "$d/x2"
    tar -C "$d/x1" -xf "$d/mm-cold.tar" 2>/dev/null; tar -C "$d/x2" -xf "$d/mm-warm.tar" 2>/dev/null
    echo "$set: mmdebstrap files that differ between its two builds (first 10):"
    { diff -rq --no-dereference "$d/x1" "$d/x2" 2>/dev/null || true; } | grep -v 'special file' |
      sed "s|$d/x[12]||g" | head -10 | sed 's/^/    /' || true
    rm -rf "$d/x1" "$d/x2"
  fi
  echo "$set: load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
done
