#!/usr/bin/env bash
# bench/store.sh — the image store (layout v2: packs) against tar, side by
# side on the same real Debian root (mmdebstrap --variant=minbase bookworm:
# 170 MB, 8,743 paths), the targets of issue 13:
#
#   import:  ingot image import ROOT.tar (durable: one syncfs)
#            vs tar -xf ROOT.tar then sync -f        wall ≤ 1.0×
#            vs tar -xf ROOT.tar (not durable)       CPU  ≤ 2.0×
#   export:  ingot image export REF -o X.tar.zst
#            vs tar --zstd -cf X.tar.zst -C extracted .   wall ≤ 1.0×
#   size:    the store's file bytes vs that .tar.zst        ≤ 1.05×
#
# Each round runs every step once, alternating which tool goes first, with
# a sync before every timed step; the median of the rounds is printed
# (RUNS, default 5). With INGOT_BEFORE=/path/to/old/ingot the old binary
# runs too, in the same rounds (its own store), for before/after figures.
# Needs root (tar -xf of a root filesystem), tar, zstd, GNU time; builds the
# Debian tarball with mmdebstrap on first use (cached, as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
CACHE=${INGOT_TEST_CACHE:-/var/cache/ingot-test}
TAR=${INGOT_BENCH_TAR:-$CACHE/debian-bookworm-minbase-amd64-1700000000.tar}
WORKDIR=${INGOT_BENCH_DIR:-/var/tmp}
BEFORE=${INGOT_BEFORE:-}

if [ ! -f "$TAR" ]; then
	echo "building $TAR with mmdebstrap (once)" >&2
	mkdir -p "$(dirname "$TAR")"
	SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --mode=root --format=tar --variant=minbase bookworm "$TAR.tmp.tar" http://deb.debian.org/debian >&2
	mv "$TAR.tmp.tar" "$TAR"
fi
go build -o bin/ingot ./cmd/ingot
INGOT=$PWD/bin/ingot

W=$(mktemp -d "$WORKDIR/ingot-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

# timed NAME CMD…: runs CMD after a sync and appends "WALL CPU" (seconds;
# CPU = user + system of the command and its children) to $W/NAME.
timed() {
	local name=$1
	shift
	sync
	/usr/bin/time -f '%e %U %S' -o "$W/time" "$@" >/dev/null
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$W/time" >>"$W/$name"
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wall() { cut -d' ' -f1 "$W/$1" | median; }
cpu() { cut -d' ' -f2 "$W/$1" | median; }
ratio() { echo "scale=2; $1 / $2" | bc; }
verdict() { if [ "$(echo "$1 <= $2" | bc)" = 1 ]; then echo "met"; else echo "MISSED"; fi; }

cat "$TAR" >/dev/null # every side reads it from the page cache
echo "input: $TAR ($(stat -c %s "$TAR") bytes, $(tar -tf "$TAR" | wc -l) paths); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

for run in $(seq "$RUNS"); do
	rm -rf "$W/x" "$W/store" "$W/old" "$W"/*.tar.zst
	mkdir "$W/x"
	steps=(tarx tarxs imp)
	[ -n "$BEFORE" ] && steps+=(oldimp)
	if [ $((run % 2)) = 0 ]; then steps=($(printf '%s\n' "${steps[@]}" | tac)); fi
	for s in "${steps[@]}"; do
		case $s in
		tarx) rm -rf "$W/x" && mkdir "$W/x" && timed tarx tar -C "$W/x" -xf "$TAR" ;;
		tarxs) rm -rf "$W/x" && mkdir "$W/x" && timed tarxs sh -c 'tar -C "$1" -xf "$2" && sync -f "$1"' - "$W/x" "$TAR" ;;
		imp) timed imp "$INGOT" --log-level warn --store "$W/store" image import "$TAR" --name bench:debian ;;
		oldimp) timed oldimp "$BEFORE" --log-level warn --store "$W/old" image import "$TAR" --name bench:debian ;;
		esac
	done
	steps=(tarc exp)
	[ -n "$BEFORE" ] && steps+=(oldexp)
	if [ $((run % 2)) = 0 ]; then steps=($(printf '%s\n' "${steps[@]}" | tac)); fi
	for s in "${steps[@]}"; do
		case $s in
		tarc) timed tarc tar --zstd -cf "$W/x.tar.zst" -C "$W/x" . ;;
		exp) timed exp "$INGOT" --log-level warn --store "$W/store" image export bench:debian -o "$W/e.tar.zst" ;;
		oldexp) timed oldexp "$BEFORE" --log-level warn --store "$W/old" image export bench:debian -o "$W/o.tar.zst" ;;
		esac
	done
	printf 'round %d (wall/CPU s): tar -xf %s  tar -xf+sync -f %s  import %s | tar --zstd -cf %s  export %s%s  (load %s)\n' "$run" \
		"$(tail -1 "$W/tarx" | tr ' ' /)" "$(tail -1 "$W/tarxs" | tr ' ' /)" "$(tail -1 "$W/imp" | tr ' ' /)" \
		"$(tail -1 "$W/tarc" | tr ' ' /)" "$(tail -1 "$W/exp" | tr ' ' /)" \
		"${BEFORE:+ | before: import $(tail -1 "$W/oldimp" | tr ' ' /) export $(tail -1 "$W/oldexp" | tr ' ' /)}" \
		"$(cut -d' ' -f1 /proc/loadavg)"
done

zst=$(stat -c %s "$W/x.tar.zst")
bytes() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }'; }
files() { find "$1" -type f | wc -l; }
size=$(bytes "$W/store")

echo
echo "median of $RUNS rounds:"
ri=$(ratio "$(wall imp)" "$(wall tarxs)"); rc=$(ratio "$(cpu imp)" "$(cpu tarx)")
re=$(ratio "$(wall exp)" "$(wall tarc)"); rs=$(ratio "$size" "$zst")
printf '  import wall %6.2fs vs tar -xf + sync -f %6.2fs: %s× (target ≤ 1.0: %s)\n' "$(wall imp)" "$(wall tarxs)" "$ri" "$(verdict "$ri" 1.0)"
printf '  import CPU  %6.2fs vs tar -xf           %6.2fs: %s× (target ≤ 2.0: %s)\n' "$(cpu imp)" "$(cpu tarx)" "$rc" "$(verdict "$rc" 2.0)"
printf '  export wall %6.2fs vs tar --zstd -cf    %6.2fs: %s× (target ≤ 1.0: %s); CPU %.2fs vs %.2fs: %s×\n' \
	"$(wall exp)" "$(wall tarc)" "$re" "$(verdict "$re" 1.0)" "$(cpu exp)" "$(cpu tarc)" "$(ratio "$(cpu exp)" "$(cpu tarc)")"
printf '  store %d B in %d files vs .tar.zst %d B: %s× (target ≤ 1.05: %s)\n' "$size" "$(files "$W/store")" "$zst" "$rs" "$(verdict "$rs" 1.05)"
if [ -n "$BEFORE" ]; then
	printf '  before: import wall %.2fs (%s×), CPU %.2fs (%s×); export wall %.2fs (%s×); store %d B in %d files (%s×)\n' \
		"$(wall oldimp)" "$(ratio "$(wall oldimp)" "$(wall tarxs)")" "$(cpu oldimp)" "$(ratio "$(cpu oldimp)" "$(cpu tarx)")" \
		"$(wall oldexp)" "$(ratio "$(wall oldexp)" "$(wall tarc)")" "$(bytes "$W/old")" "$(files "$W/old")" "$(ratio "$(bytes "$W/old")" "$zst")"
	if cmp -s "$W/e.tar.zst" "$W/o.tar.zst"; then echo "  exports of both binaries: byte-identical"; else echo "  exports of both binaries DIFFER"; fi
fi
