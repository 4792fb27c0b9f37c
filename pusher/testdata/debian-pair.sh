#!/bin/sh
# Builds the pusher's image pair as directories: a = bookworm, b = bookworm
# + bookworm-updates + bookworm-security (a real security update).
set -e
cd "${PAIR_DIR:-$(dirname "$0")}"
export SOURCE_DATE_EPOCH=1700000000
PKGS=openssh-server,python3,curl,ca-certificates,less,procps
[ -d a ] || { rm -rf a.tmp; mmdebstrap --quiet --variant=minbase --include=$PKGS --format=directory bookworm a.tmp \
  "deb http://deb.debian.org/debian bookworm main" && mv a.tmp a; }
[ -d b ] || { rm -rf b.tmp; mmdebstrap --quiet --variant=minbase --include=$PKGS --format=directory bookworm b.tmp \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" && mv b.tmp b; }
