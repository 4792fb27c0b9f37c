#!/usr/bin/env bash
# Package build benchmark: `ingot pkg build` against `sbuild`, side by side
# in one run, on the same source packages from the same mirror (the host's
# Debian bookworm apt source), warm caches: ingot with its download cache
# and build-root cache filled by a first build, sbuild with a chroot made
# once by sbuild-createchroot. Prints the wall time of one warm build each,
# the ratio ingot/sbuild, and whether two builds of each tool gave
# byte-identical .deb files. The machine load (uptime) is printed before
# and after, since wall times on a shared machine depend on it.
#
#   sudo bash bench/pkgbuild.sh                 # hello
#   SOURCES="hello libmd" sudo bash bench/pkgbuild.sh
#
# Needs root and network to the mirror; installs sbuild and GNU time with
# apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/pkgbuild.sh needs root" >&2; exit 2; }
SOURCES=${SOURCES:-hello}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if ! command -v sbuild >/dev/null || ! command -v /usr/bin/time >/dev/null; then
  apt-get install -y --no-install-recommends sbuild schroot debootstrap time >/dev/null
fi
W=$(mktemp -d /var/tmp/ingot-bench.XXXXXX)
CACHE=${CACHE:-/var/cache/ingot-bench-pkgbuild}   # download cache
ROOTS=${ROOTS:-$CACHE/roots}                          # build-root cache
trap 'rm -rf "$W"' EXIT
go build -o "$W/ingot" ./cmd/ingot
INGOT="$W/ingot"
cp examples/minimal.yaml "$W/base.yaml"

# sbuild's chroot, made once and kept (sbuild-createchroot makes a plain
# directory chroot: sbuild installs the build dependencies with apt in
# every build, from the chroot's apt cache once warm, and purges them
# afterwards).
CHROOT=/srv/chroot/bookworm-amd64-sbuild
if [ ! -d "$CHROOT" ]; then
  sbuild-createchroot --include=eatmydata bookworm "$CHROOT" "$MIRROR" >"$W/createchroot.log" 2>&1 || {
    tail -20 "$W/createchroot.log" >&2; exit 1; }
fi
# The chroot's package lists, refreshed once, untimed (the builds run with
# --no-apt-update; without lists sbuild cannot install the build
# dependencies: "Failed to explain bd-uninstallable"), and its dpkg state
# repaired if an earlier sbuild was killed mid-install (same error).
(cd / && schroot -c bookworm-amd64-sbuild -u root --directory / -- \
  sh -c 'dpkg --configure -a && apt-get update -q' >"$W/apt-update.log" 2>&1) || {
  tail -20 "$W/apt-update.log" >&2; exit 1; }

secs() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
cpu() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' "$1"; }
same() { # DIR1 DIR2: yes when every .deb of DIR1 is byte-identical in DIR2
  local f
  for f in "$1"/*.deb; do cmp -s "$f" "$2/$(basename "$f")" || { echo no; return; }; done
  echo yes
}

echo "load before: $(uptime)"
printf '%-10s %-7s %9s %9s %9s %13s\n' source tool wall1_s wall2_s cpu2_s reproducible
for src in $SOURCES; do
  d="$W/$src"; mkdir -p "$d"
  # ingot: a first build fills the caches; the two measured builds are warm.
  "$INGOT" pkg build --from-repo "$src" --base "$W/base.yaml" --cache "$CACHE" --root-cache "$ROOTS" \
    --lock "$d/$src.build-lock" -o "$d/warmup" --progress none >/dev/null 2>"$d/ingot.warmup.err" || { tail -20 "$d/ingot.warmup.err" >&2; exit 1; }
  for i in 1 2; do
    /usr/bin/time -v -o "$d/ingot$i.time" "$INGOT" pkg build --from-repo "$src" --base "$W/base.yaml" --cache "$CACHE" \
      --root-cache "$ROOTS" --lock "$d/$src.build-lock" -o "$d/ingot$i" --progress none >/dev/null 2>"$d/ingot$i.err"
  done
  # sbuild: the same .dsc ingot fetched (checked against the Sources index).
  dsc=$(ls "$CACHE/sources/$src/"*.dsc | head -1)
  for i in 1 2; do
    mkdir -p "$d/sbuild$i"
    (cd "$d/sbuild$i" && /usr/bin/time -v -o "$d/sbuild$i.time" sbuild --no-source --arch-all --dist=bookworm \
      --chroot=bookworm-amd64-sbuild --no-run-lintian --no-run-autopkgtest --no-apt-update --no-apt-upgrade \
      --no-apt-distupgrade "$dsc" >"$d/sbuild$i.log" 2>&1) || { tail -20 "$d/sbuild$i.log" >&2; exit 1; }
  done
  wi=$(secs "$d/ingot2.time"); ws=$(secs "$d/sbuild2.time")
  wi1=$(secs "$d/ingot1.time"); ws1=$(secs "$d/sbuild1.time")
  printf '%-10s %-7s %9s %9s %9s %13s\n' "$src" ingot "$wi1" "$wi" "$(cpu "$d/ingot2.time")" "$(same "$d/ingot1" "$d/ingot2")"
  printf '%-10s %-7s %9s %9s %9s %13s\n' "$src" sbuild "$ws1" "$ws" "$(cpu "$d/sbuild2.time")" "$(same "$d/sbuild1" "$d/sbuild2")"
  awk -v a="$wi" -v b="$ws" -v a1="$wi1" -v b1="$ws1" -v s="$src" \
    'BEGIN { printf "%-10s ratio ingot/sbuild: run 1 %.2f, run 2 %.2f, both %.2f\n", s, a1/b1, a/b, (a+a1)/(b+b1) }'
done
echo "load after: $(uptime)"
