#!/usr/bin/env bash
# Builds (once, cached) the real image pairs the differ's tests and
# bench/differ.sh use, with mmdebstrap from the Debian mirror:
#   old.tar  bookworm only                                   } same package set
#   new.tar  bookworm + bookworm-updates + bookworm-security }
#   minbase.tar  bookworm minbase, the base for `ingot review`
# Usage: realimages.sh [DIR]   (default $INGOT_TEST_CACHE/differ, else
# /var/cache/ingot-test/differ). Prints DIR. Needs root and mmdebstrap.
# Safe when several callers run at once (flock).
set -euo pipefail
dir=${1:-${INGOT_TEST_CACHE:-/var/cache/ingot-test}/differ}
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
export SOURCE_DATE_EPOCH=1700000000
mirror=${INGOT_DEBIAN_MIRROR:-http://deb.debian.org}
include=openssh-server,curl,ca-certificates,python3,perl,rsync,less,vim-tiny,iproute2,procps,sudo,systemd,openssl,tzdata,gzip,xz-utils,cron,logrotate
build() { # NAME INCLUDE MIRROR...
  local out=$dir/$1.tar tmp=$dir/.tmp-$1.tar inc=$2; shift 2
  [ -s "$out" ] && return 0
  mmdebstrap --quiet --variant=minbase --format=tar ${inc:+--include="$inc"} bookworm "$tmp" "$@" >&2
  mv "$tmp" "$out"
}
build old "$include" "deb $mirror/debian bookworm main"
build new "$include" "deb $mirror/debian bookworm main" \
  "deb $mirror/debian bookworm-updates main" "deb $mirror/debian-security bookworm-security main"
build minbase "" "deb $mirror/debian bookworm main"
echo "$dir"
