#!/usr/bin/env bash
# ingot convert rpm2deb against alien, side by side on the same RPMs
# (the test RPMs of builder/rpm2deb, built here with rpmbuild): changelog
# entries kept, dependencies kept, epochs kept, lintian errors,
# reproducibility (two conversions, byte-identical?) and time per package.
#
# Needs: go, rpm (rpmbuild), alien, lintian, dpkg-dev. Run as root (alien
# needs it, or fakeroot). Uses the reference Debian root of the tests
# (/var/cache/ingot-test/debian-bookworm-minbase-*.root) as --target-root
# when it exists, so soname and file dependencies resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d /tmp/bench-rpm2deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

for t in rpmbuild alien lintian dpkg-parsechangelog; do
  command -v "$t" >/dev/null || { echo "bench/rpm2deb.sh needs $t (make deps; apt-get install alien)" >&2; exit 2; }
done

go build -o "$work/ingot" ./cmd/ingot
ingot="$work/ingot"

specs=(hello hello-doc tiny)
for s in "${specs[@]}"; do
  rpmbuild -bb --quiet --define "_topdir $work/top-$s" "builder/rpm2deb/testdata/specs/$s.spec" >/dev/null 2>&1
done
mapfile -t rpms < <(find "$work"/top-*/RPMS -name '*.rpm' | sort)

target=()
root=$(ls -d /var/cache/ingot-test/debian-bookworm-minbase-*.root 2>/dev/null | head -1 || true)
[ -n "$root" ] && target=(--target-root "$root")

now_ms() { date +%s%3N; }

# changelog_entries DEB: entries dpkg-parsechangelog finds in the .deb.
changelog_entries() {
  local deb=$1 d
  d=$(mktemp -d "$work/cl.XXXXXX")
  dpkg-deb -x "$deb" "$d"
  local f
  f=$(find "$d/usr/share/doc" -name changelog.Debian.gz | head -1)
  if [ -z "$f" ]; then echo 0; return; fi
  gzip -dc "$f" > "$d/changelog"
  dpkg-parsechangelog -l "$d/changelog" --all --format rfc822 2>/dev/null | grep -c '^Version:' || true
}
relations() { # number of relations in Depends/Pre-Depends/Provides/Conflicts/Breaks/Replaces/Recommends/Suggests
  dpkg-deb -f "$1" Pre-Depends Depends Provides Conflicts Breaks Replaces Recommends Suggests \
    | sed 's/^[A-Za-z-]*: //' | tr ',' '\n' | grep -c '[a-z]' || true
}
lintian_errors() { lintian --allow-root "$1" 2>/dev/null | grep -c '^E:' || true; }

printf '%-28s %-6s %9s %5s %-16s %6s %6s %8s\n' rpm tool changelog deps version lint-E reprod ms/pkg
tot_i=0; tot_a=0
for rpm in "${rpms[@]}"; do
  base=$(basename "$rpm")
  rpm_entries=$(rpm -qp --qf '[%{CHANGELOGTIME}\n]' "$rpm" | grep -c . || true)
  rpm_evr=$(rpm -qp --qf '%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}' "$rpm")

  # ingot, twice
  mkdir -p "$work/i1" "$work/i2"; rm -f "$work"/i1/* "$work"/i2/*
  t0=$(now_ms)
  "$ingot" convert rpm2deb -o "$work/i1" "${target[@]}" "$rpm" >/dev/null
  t1=$(now_ms)
  sleep 1
  "$ingot" convert rpm2deb -o "$work/i2" "${target[@]}" "$rpm" >/dev/null
  ideb=$(ls "$work"/i1/*.deb); ideb2=$(ls "$work"/i2/*.deb)
  irep=no; cmp -s "$ideb" "$ideb2" && irep=yes
  ims=$((t1 - t0)); tot_i=$((tot_i + ims))

  # alien, twice (--scripts converts the scriptlets)
  mkdir -p "$work/a1" "$work/a2"; rm -f "$work"/a1/* "$work"/a2/*
  t0=$(now_ms)
  (cd "$work/a1" && alien --to-deb --scripts "$rpm" >/dev/null 2>&1)
  t1=$(now_ms)
  sleep 1
  (cd "$work/a2" && alien --to-deb --scripts "$rpm" >/dev/null 2>&1)
  adeb=$(ls "$work"/a1/*.deb); adeb2=$(ls "$work"/a2/*.deb)
  arep=no; cmp -s "$adeb" "$adeb2" && arep=yes
  ams=$((t1 - t0)); tot_a=$((tot_a + ams))

  for tool in ingot alien; do
    if [ $tool = ingot ]; then deb=$ideb; rep=$irep; ms=$ims; else deb=$adeb; rep=$arep; ms=$ams; fi
    printf '%-28s %-6s %4s/%-4s %5s %-16s %6s %6s %8s\n' "${base:0:28}" $tool \
      "$(changelog_entries "$deb")" "$rpm_entries" "$(relations "$deb")" \
      "$(dpkg-deb -f "$deb" Version)" "$(lintian_errors "$deb")" $rep $ms
  done
  echo "  (rpm version $rpm_evr)"
done
n=${#rpms[@]}
echo
echo "mean time per package: ingot $((tot_i / n)) ms, alien $((tot_a / n)) ms (alien/ingot = $(awk "BEGIN{printf \"%.1f\", $tot_a/($tot_i>0?$tot_i:1)}")x)"
