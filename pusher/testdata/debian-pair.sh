#!/bin/sh
# Builds the pusher's image pair as directories: a = bookworm, b = bookworm
# + bookworm-updates + bookworm-security (a real security update).
# The caller holds a lock (one builder at a time).
set -e
cd "${PAIR_DIR:-$(dirname "$0")}"
export SOURCE_DATE_EPOCH=1700000000
PKGS=openssh-server,python3,curl,ca-certificates,less,procps

# clean DIR: removes a partial tree. An mmdebstrap that was killed leaves
# /proc, /sys and /dev/pts mounted inside its target: unmount them first
# (deepest first) and never let rm cross into another file system.
clean() {
  [ -e "$1" ] || return 0
  top=$(realpath "$1")
  awk -v top="$top" '$2 == top || index($2, top "/") == 1 { print $2 }' /proc/mounts |
    sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$1"
}

# build NAME SOURCE...: mmdebstrap into NAME.tmp, then rename it to NAME.
build() {
  name=$1; shift
  [ -d "$name" ] && return 0
  clean "$name.tmp"
  mmdebstrap --quiet --variant=minbase --include=$PKGS --format=directory bookworm "$name.tmp" "$@"
  mv "$name.tmp" "$name"
}

build a "deb http://deb.debian.org/debian bookworm main"
build b "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
