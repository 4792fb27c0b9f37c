#!/usr/bin/env bash
# bench/differ.sh: `ingot diff` against diffoscope, side by side in one run.
#
# 1. Speed and memory on two real image tars of the same package set, built
#    by mmdebstrap from bookworm alone (old.tar) and from bookworm +
#    bookworm-updates + bookworm-security (new.tar); see
#    differ/testdata/realimages.sh (cached under $INGOT_TEST_CACHE/differ).
#    Targets: ingot >= 50x faster (wall time), <= 0.1x peak memory (max RSS).
# 2. Coverage on the differ's fixture pair (every kind of metadata change):
#    which changes each tool's report shows.
#
# Needs root (mmdebstrap), GNU time, and diffoscope (installed here if
# missing). DIFFOSCOPE_TIMEOUT (seconds, default 3600) bounds diffoscope's
# run; if it is hit, the speed ratio printed is a lower bound.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
# Kept for a look when the script fails; removed when it succeeds.
trap 'rc=$?; if [ $rc -eq 0 ]; then rm -rf "$tmp"; else echo "outputs kept in $tmp" >&2; fi' EXIT

if ! command -v diffoscope >/dev/null; then
  echo "installing diffoscope (large)..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends diffoscope >/dev/null
fi
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null

go build -o "$tmp/ingot" ./cmd/ingot
go run ./differ/differtest/mkfixture "$tmp"
imgs=$(differ/testdata/realimages.sh)

# run NAME CMD...: runs CMD under GNU time; exit 0 or 1 (differences) is fine.
run() {
  local name=$1; shift
  local rc=0
  /usr/bin/time -f '%e %M %U %S' -o "$tmp/$name.time" "$@" >"$tmp/$name.stdout" 2>"$tmp/$name.stderr" || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "$name: exit $rc" >&2
    tail -5 "$tmp/$name.stderr" >&2
    [ "$rc" -eq 124 ] || exit 1
  fi
  echo "$rc" >"$tmp/$name.rc"
}

echo "== real images: $(du -m "$imgs/old.tar" | cut -f1) MB and $(du -m "$imgs/new.tar" | cut -f1) MB tars"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; wall times move with it, CPU times less)"
run ingot "$tmp/ingot" diff -o "$tmp/ingot.txt" "$imgs/old.tar" "$imgs/new.tar"
run diffoscope timeout "${DIFFOSCOPE_TIMEOUT:-3600}" diffoscope --text "$tmp/diffoscope.txt" "$imgs/old.tar" "$imgs/new.tar"
# GNU time writes "Command exited with non-zero status 1" first when it did.
read -r it im iu is < <(tail -n 1 "$tmp/ingot.time")
read -r dt dm du ds < <(tail -n 1 "$tmp/diffoscope.time")
ic=$(awk -v u="$iu" -v s="$is" 'BEGIN { printf "%.2f", u + s }')
dc=$(awk -v u="$du" -v s="$ds" 'BEGIN { printf "%.2f", u + s }')
lower=""
[ "$(cat "$tmp/diffoscope.rc")" = 124 ] && lower=">= "
printf '%-12s %10s %10s %14s %s\n' tool "wall (s)" "CPU (s)" "max RSS (MiB)" "report"
printf '%-12s %10s %10s %14d %s\n' "ingot diff" "$it" "$ic" $((im / 1024)) "$(grep -c '' "$tmp/ingot.txt") lines"
printf '%-12s %10s %10s %14d %s\n' diffoscope "$dt" "$dc" $((dm / 1024)) "$(grep -c '' "$tmp/diffoscope.txt" 2>/dev/null || echo 0) lines"
awk -v it="$it" -v dt="$dt" -v ic="$ic" -v dc="$dc" -v im="$im" -v dm="$dm" -v lower="$lower" 'BEGIN {
  s = dt / (it > 0.01 ? it : 0.01); m = im / dm; c = dc / (ic > 0.01 ? ic : 0.01)
  printf "speed: ingot is %s%.0fx faster in wall time (target >= 50x: %s), %s%.0fx in CPU time\n", lower, s, (s >= 50 ? "met" : "MISSED"), lower, c
  printf "memory: ingot uses %.3fx diffoscope'"'"'s peak RSS (target <= 0.1x: %s)\n", m, (m <= 0.1 ? "met" : "MISSED")
}'
echo "upgraded packages named by ingot: $(grep -c '^package upgraded' "$tmp/ingot.txt")," \
  "changelog entries: $(grep -Ec '^  \| [a-z0-9][^ ]* \([^)]*\) .*; ' "$tmp/ingot.txt")"

echo
echo "== fixture pair (differ/differtest): which changes each report shows"
run ingot-fx "$tmp/ingot" diff -o "$tmp/ingot-fx.txt" "$tmp/a.tar" "$tmp/b.tar"
run diffoscope-fx diffoscope --text "$tmp/diffoscope-fx.txt" "$tmp/a.tar" "$tmp/b.tar"
missed=()
# check NAME INGOT-REGEX DIFFOSCOPE-REGEX (extended regexps)
check() {
  local i=no d=no
  grep -Eq -- "$2" "$tmp/ingot-fx.txt" && i=yes
  grep -Eq -- "$3" "$tmp/diffoscope-fx.txt" && d=yes
  printf '%-34s %-6s %s\n' "$1" "$i" "$d"
  [ "$d" = yes ] || missed+=("$1")
  [ "$i" = yes ] || { echo "ingot's report lacks: $1" >&2; exit 1; }
}
printf '%-34s %-6s %s\n' change ingot diffoscope
check "mode 0644 -> 0600"                 'etc/foo.conf  mode: 0644 -> 0600'                '-rw-------.*etc/foo.conf'
check "owner root -> app (uid and name)"  'etc/app.conf  uname: root -> app'                'app +\(1000\).*etc/app.conf'
check "setuid added"                      'usr/bin/ping  !! Setuid added'                   '-rwsr-xr-x.*usr/bin/ping'
check "device 8,0 -> 8,16"                'dev/sda  device: 8,0 -> 8,16'                    '(8, 16.*dev/sda|minor: 16)'
check "hardlink re-pointed a -> b"        'usr/bin/c  hardlink: now a hardlink of /usr/bin/b' 'usr/bin/c.*(link to|->).*usr/bin/b'
check "symlink retargeted"                'usr/lib/libfoo.so  link: libfoo.so.1 -> libfoo.so.2' 'destination: libfoo.so.2|libfoo.so -> libfoo.so.2'
check "capability xattr added (decoded)"  'security.capability: \(none\) -> cap_net_admin,cap_net_raw=ep' 'cap_net|security\.capability'
check "user xattr added"                  'xattr.user.comment: \(none\) -> "reviewed"'      'user\.comment|reviewed'
check "text edit (unified diff)"          '^ +\+This host is managed by ingot, image 2026-02\.' '\+This host is managed by ingot, image 2026-02\.'
check "edit inside a .gz"                 '^ +\+foo \\- do foo safely'                       '\+foo \\- do foo safely'
check "file added"                        '^added +/etc/new.conf'                           '\+.*etc/new\.conf'
check "file removed"                      '^removed /etc/old.conf'                          '-.*etc/old\.conf'
check "package upgraded, both versions"   '^package upgraded +libfoo1 1\.0-1 -> 1\.1-1'     'libfoo1.*1\.0-1.*1\.1-1'
check "new changelog entries"             '^  \| libfoo \(1\.0-2\)'                          '\+libfoo \(1\.0-2\)'
echo "mtime-only change: ingot: $(grep -c 'only in mtime: ignored' "$tmp/ingot-fx.txt") summary line (ignored by default);" \
  "diffoscope: shown in its file list ($(grep -c '23:13:20.*copyright' "$tmp/diffoscope-fx.txt") line)"
if [ ${#missed[@]} -gt 0 ]; then
  echo "diffoscope misses: $(IFS=';'; echo "${missed[*]}")"
fi
