#!/usr/bin/env bash
# bench/images.sh — ingot's image store against tar, side by side, on a real
# Debian root (mmdebstrap --variant=minbase bookworm: ~170 MB, ~8,700 paths).
#
#   import:  ingot image import ROOT.tar        vs  tar -xf ROOT.tar
#   export:  ingot image export REF -o X.tar.zst vs  tar --zstd -cf X.tar.zst -C extracted .
#   size:    the store (bytes of its files)       vs  that .tar.zst
#
# Each pair runs RUNS times (default 3), alternating which goes first, with
# a sync before every timed step; the best time of each is kept. Targets
# (issue 2): import ≤ 1.5× tar -xf, export ≤ 1.5× tar --zstd, store ≤ 1.05×
# .tar.zst. Needs root (tar -xf of a root filesystem), tar, zstd; builds
# the Debian tarball with mmdebstrap on first use (cached, as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
CACHE=${INGOT_TEST_CACHE:-/var/cache/ingot-test}
TAR=${INGOT_BENCH_TAR:-$CACHE/debian-bookworm-minbase-amd64-1700000000.tar}
WORKDIR=${INGOT_BENCH_DIR:-/var/tmp}

if [ ! -f "$TAR" ]; then
	echo "building $TAR with mmdebstrap (once)" >&2
	mkdir -p "$(dirname "$TAR")"
	SOURCE_DATE_EPOCH=1700000000 mmdebstrap --variant=minbase bookworm "$TAR.tmp.tar" http://deb.debian.org/debian >&2
	mv "$TAR.tmp.tar" "$TAR"
fi
go build -o bin/ingot ./cmd/ingot
INGOT=$PWD/bin/ingot

W=$(mktemp -d "$WORKDIR/ingot-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

# timed CMD…: runs CMD after a sync, prints "WALL CPU" in seconds (CPU =
# user + system, children included: steadier than wall time on a busy host).
timed() {
	sync
	/usr/bin/time -f '%e %U %S' -o "$W/time" "$@" >/dev/null
	awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$W/time"
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

cat "$TAR" >/dev/null # both sides read it from the page cache
paths=$(tar -tf "$TAR" | wc -l)
echo "input: $TAR ($(stat -c %s "$TAR") bytes, $paths paths); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

tx= ti= tc= te= cx= ci= cc= ce=
for run in $(seq "$RUNS"); do
	rm -rf "$W/x" "$W/store" "$W/x.tar.zst" "$W/e.tar.zst"
	mkdir "$W/x"
	if [ $((run % 2)) = 1 ]; then
		read -r a ac < <(timed tar -C "$W/x" -xf "$TAR")
		read -r b bc < <(timed "$INGOT" --log-level warn --store "$W/store" image import "$TAR" --name bench:debian)
		read -r c cc2 < <(timed tar --zstd -cf "$W/x.tar.zst" -C "$W/x" .)
		read -r e ec < <(timed "$INGOT" --log-level warn --store "$W/store" image export bench:debian -o "$W/e.tar.zst")
	else
		read -r b bc < <(timed "$INGOT" --log-level warn --store "$W/store" image import "$TAR" --name bench:debian)
		read -r a ac < <(timed tar -C "$W/x" -xf "$TAR")
		read -r e ec < <(timed "$INGOT" --log-level warn --store "$W/store" image export bench:debian -o "$W/e.tar.zst")
		read -r c cc2 < <(timed tar --zstd -cf "$W/x.tar.zst" -C "$W/x" .)
	fi
	printf 'run %d (wall/cpu s): tar -xf %s/%s  import %s/%s  |  tar --zstd -cf %s/%s  export %s/%s  (load %s)\n' \
		"$run" "$a" "$ac" "$b" "$bc" "$c" "$cc2" "$e" "$ec" "$(cut -d' ' -f1 /proc/loadavg)"
	tx=$(min "$tx" "$a"); ti=$(min "$ti" "$b"); tc=$(min "$tc" "$c"); te=$(min "$te" "$e")
	cx=$(min "$cx" "$ac"); ci=$(min "$ci" "$bc"); cc=$(min "$cc" "$cc2"); ce=$(min "$ce" "$ec")
done

zst=$(stat -c %s "$W/x.tar.zst")
# Store size: the bytes of its files (what a server holds and serves);
# du's apparent size would add 4 KiB per directory (512 shard folders).
apparent=$(find "$W/store" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }')
allocated=$(du -s -B1 "$W/store" | cut -f1)
objects=$(find "$W/store/objects" -type f | wc -l)
ratio() { if [ "$(echo "$2 == 0" | bc)" = 1 ]; then echo "n/a"; else echo "scale=2; $1 / $2" | bc; fi; }
verdict() { if [ "$(echo "$1 <= $2" | bc)" = 1 ]; then echo "ok"; else echo "MISSED"; fi; }

ri=$(ratio "$ti" "$tx"); re=$(ratio "$te" "$tc"); rs=$(ratio "$apparent" "$zst")
echo
echo "best of $RUNS (wall time; the targets are about wall time):"
printf '  import  %6.2fs  vs tar -xf          %6.2fs  ratio %s (target ≤ 1.5: %s)\n' "$ti" "$tx" "$ri" "$(verdict "$ri" 1.5)"
printf '  export  %6.2fs  vs tar --zstd -cf   %6.2fs  ratio %s (target ≤ 1.5: %s)\n' "$te" "$tc" "$re" "$(verdict "$re" 1.5)"
echo "best of $RUNS (CPU time, user + system):"
printf '  import  %6.2fs  vs tar -xf          %6.2fs  ratio %s\n' "$ci" "$cx" "$(ratio "$ci" "$cx")"
printf '  export  %6.2fs  vs tar --zstd -cf   %6.2fs  ratio %s\n' "$ce" "$cc" "$(ratio "$ce" "$cc")"
printf '  store   %9d B (file bytes) vs .tar.zst %9d B  ratio %s (target ≤ 1.05: %s)\n' "$apparent" "$zst" "$rs" "$(verdict "$rs" 1.05)"
printf '  store on disk (allocated blocks) %d B, %d objects; ingot .tar.zst %d B\n' "$allocated" "$objects" "$(stat -c %s "$W/e.tar.zst")"
