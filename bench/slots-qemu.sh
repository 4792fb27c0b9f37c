#!/usr/bin/env bash
# bench/slots-qemu.sh: A/B root slots on a real kernel in QEMU (TCG, OVMF,
# GRUB EFI). Builds images A..E with ingot (bench/slots.yaml + the agent),
# makes a GPT disk without mounting anything (ESP with mtools, two ext4 roots,
# a data partition and a customer partition /vz with mkfs.ext4 -d), boots
# slot a, and over QEMU's user networking:
#   1. `ingot push B --slot` (waits for the trial boot to commit): the host's
#      hostname, certificate, an /etc file edited on the host and one edited on
#      both sides (a conflict, settled by its policy: take-image) reach b;
#   2. a hard reset: the second boot stays on b;
#   3. `ingot rollback --slot --hosts`: a boots unchanged (then back to b
#      over the API: a full reboot each way);
#   K. kexec (the kernel is the same in A and B): b → a and a → b with
#      POST /v1/slots/switch?kexec=1, no firmware, no GRUB;
#   4. C, whose health check fails: back on b by itself, the attempt reported;
#   5. D, whose init exits (kernel panic): back on b by itself;
#   6. in-place reinstall to E (another image, into slot a) with /vz mounted:
#      every file on /vz is byte-identical afterwards.
# Downtime per switch is the agent's record (switch → checks passed) and the
# wall clock of each push (sync + reboot + trial). serial.ts is the serial
# console with the host's time on each line (the agent logs to it too).
#
# Usage: sudo bash bench/slots-qemu.sh     (WORK=/var/tmp/ingot-bench-slots;
#        BASE=DIGEST STORE=DIR reuse a base image already built from bench/slots.yaml;
#        SCENARIOS="reset rollback kexec c d e" picks the steps after 1, which
#        always runs: any subset, in this order)
set -euo pipefail
WORK=${WORK:-/var/tmp/ingot-bench-slots}
SCENARIOS=${SCENARIOS:-reset rollback kexec c d e}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
for t in qemu-system-x86_64 grub-mkstandalone mcopy mkfs.vfat sfdisk mkfs.ext4 debugfs curl; do
  command -v $t >/dev/null || { echo "needs $t (.ci/packages.txt)"; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 2; }
[ -f /usr/share/ovmf/OVMF.fd ] || { echo "needs ovmf"; exit 2; }

mkdir -p "$WORK"; cd "$WORK"
rm -rf overlay-a a-src b-src c-src d-src e-src ca keys disk.img esp.img root-a root-a.img root-b.img data data.img vz vz.img vz.out serial.log hosts.txt
STORE=${STORE:-$WORK/store}
INGOT=$WORK/ingot
(cd "$REPO" && CGO_ENABLED=0 go build -o "$INGOT" ./cmd/ingot)
ing() { "$INGOT" --store "$STORE" "$@"; }
now() { date +%s.%N; }

SPORT=18931 APORT=18943
ing ca init --dir ca >/dev/null
ing ca issue vm --role agent --host 127.0.0.1 --dir ca >/dev/null
ing ca issue ctl --role controller --dir ca >/dev/null
[ -f keys/release.key ] || { mkdir -p keys; ing key gen keys/release >/dev/null; }

overlay() { # overlay dir, image name
  local o=$1
  mkdir -p $o/usr/local/bin $o/etc/systemd/system/multi-user.target.wants $o/etc/ingot $o/boot/efi $o/data $o/vz $o/usr/share
  cp "$INGOT" $o/usr/local/bin/ingot
  cp "$REPO/examples/ingot-agent.service" $o/etc/systemd/system/ingot-agent.service
  ln -sf ../ingot-agent.service $o/etc/systemd/system/multi-user.target.wants/ingot-agent.service
  cat > $o/etc/systemd/system/ingot-marker.service <<EOF
[Unit]
Description=print the booted slot on the serial console
After=ingot-agent.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "INGOT-UP \$(cat /proc/cmdline) image=\$(cat /etc/slot-image)" > /dev/ttyS0'
[Install]
WantedBy=multi-user.target
EOF
  ln -sf ../ingot-marker.service $o/etc/systemd/system/multi-user.target.wants/ingot-marker.service
  # The agent's log on the serial console too (serial.ts times it).
  mkdir -p $o/etc/systemd/system/ingot-agent.service.d
  printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' > $o/etc/systemd/system/ingot-agent.service.d/console.conf
  # kexec-tools is there for the kexec switch only: reboots stay reboots.
  mkdir -p $o/etc/default; printf 'LOAD_KEXEC=false\n' > $o/etc/default/kexec
  printf '/dev/vda1 /boot/efi vfat defaults 0 0\n/dev/vda4 /data ext4 defaults 0 0\n/dev/vda5 /vz ext4 defaults 0 0\n' > $o/etc/fstab
  echo ok > $o/usr/share/slot-healthy           # the health check's file
  echo "setting=image-a" > $o/etc/conflict.conf   # changed by the host and by B
  echo "x=image" > $o/etc/host-only.conf          # changed by the host only
  mkdir -p $o/etc/systemd/network
  printf '[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n' > $o/etc/systemd/network/20-qemu.network
  ln -sf /lib/systemd/system/systemd-networkd.service $o/etc/systemd/system/multi-user.target.wants/systemd-networkd.service
  echo "$2" > $o/etc/slot-image
}
overlay overlay-a A
# The host's own configuration lives only in A; B gets it by carry-over.
cp ca/ca.pem ca/vm.pem ca/vm-key.pem keys/release.pub overlay-a/etc/ingot/
echo slothost > overlay-a/etc/hostname
cat > overlay-a/etc/ingot/agent.yaml <<EOF
name: vm
listen: ":7443"
root: /
stores: [http://10.0.2.2:$SPORT]
tls: {ca: ca.pem, cert: vm.pem, key: vm-key.pem}
trusted_keys: [release.pub]
slots:
  a: {device: /dev/vda2}
  b: {device: /dev/vda3}
  state_dir: /data/ingot-slots
  keep: [/data, /boot/efi, /vz]
  boot: {type: grub, grubenv: /boot/efi/EFI/ingot/grubenv}
  reboot: [systemctl, reboot]
  etc_default: keep-host
  etc_policies: [{path: etc/conflict.conf, policy: take-image}]
  health: {deadline: 3m, checks: [{tcp: "127.0.0.1:7443"}, {command: [test, -e, /usr/share/slot-healthy]}]}
EOF
# The base image: built by ingot from the spec (or BASE=digest in STORE).
if [ -z "${BASE:-}" ]; then
  cp "$REPO/bench/slots.yaml" spec.yaml
  [ -f spec.lock ] || ing lock spec.yaml -o spec.lock >/dev/null
  t0=$(now)
  BASE=$(ing build spec.yaml 2> build.log)
  echo "built the base image in $(echo "$(now) - $t0" | bc) s"
fi
# Image A: the base with the overlay (agent, units, fstab, this host's files).
rm -rf a-src; mkdir a-src
ing image export "$BASE" -o - | tar -C a-src -xpf - --numeric-owner --xattrs --xattrs-include='*'
cp -a overlay-a/. a-src/
IMG_A=$(ing image import a-src)
ing image sign "$IMG_A" --key keys/release.key --as slot:prod

# Slot a: image A, written by the agent itself into an empty directory
# (so its state directory says which image the slot holds).
mkdir root-a
cat > seed.yaml <<EOF
root: $WORK/root-a
stores: [$STORE]
trusted_keys: [$WORK/keys/release.pub]
local_paths: [var/lib/ingot-agent/**]
EOF
t0=$(now)
"$INGOT" agent --config seed.yaml --sync "$IMG_A" > seed.log
echo "slot a written by the agent in $(echo "$(now) - $t0" | bc) s"
# The host's own edits of /etc, after the image was installed.
echo "setting=host" > root-a/etc/conflict.conf
echo "x=host" > root-a/etc/host-only.conf
image() { # name, source dir, delta base: import and sign
  local d; d=$(ing image import "$2" --delta-from "$3"); ing image sign "$d" --key keys/release.key --as slot:prod >&2; echo "$d"; }
# Image B: A with another /etc/slot-image, its own conflict.conf, and
# without the host's own files.
rm -rf b-src; cp -a a-src b-src
rm -rf b-src/etc/hostname b-src/etc/ingot/*
echo B > b-src/etc/slot-image
echo "setting=image-b" > b-src/etc/conflict.conf
IMG_B=$(image B b-src "$IMG_A")
IMG_C= IMG_D= IMG_E=
# Image C: B without the health check's file: it boots, its checks fail.
if want c; then
rm -rf c-src; cp -a b-src c-src
echo C > c-src/etc/slot-image
rm -f c-src/usr/share/slot-healthy
IMG_C=$(image C c-src "$IMG_B")
fi
# Image D: B whose init exits at once (the kernel panics and, with
# panic=5, reboots).
if want d; then
rm -rf d-src; cp -a b-src d-src
echo D > d-src/etc/slot-image
rm -f d-src/usr/sbin/init
printf '#!/bin/sh\nexit 1\n' > d-src/usr/sbin/init; chmod 755 d-src/usr/sbin/init
IMG_D=$(image D d-src "$IMG_B")
fi
# Image E, the reinstall target: B with 20 MB of new content and its own
# marker (a different image; not a different distribution).
if want e; then
rm -rf e-src; cp -a b-src e-src
echo E > e-src/etc/slot-image
mkdir -p e-src/usr/share/variant-e
head -c 20M /dev/urandom > e-src/usr/share/variant-e/blob
IMG_E=$(image E e-src "$IMG_B")
fi
echo "A=$IMG_A B=$IMG_B C=$IMG_C D=$IMG_D E=$IMG_E"
EXT4=(-q -F -O ^orphan_file,^metadata_csum_seed)
truncate -s 1600M root-a.img root-b.img
mkfs.ext4 "${EXT4[@]}" -L root-a -d root-a root-a.img
mkfs.ext4 "${EXT4[@]}" -L root-b root-b.img
mkdir -p data/ingot-slots data/customers
echo "customer data" > data/customers/vz-101.img
truncate -s 128M data.img
mkfs.ext4 "${EXT4[@]}" -L data -d data data.img
# /vz: the customers' containers, mounted in the guest, in slots.keep.
mkdir -p vz/101/root/etc vz/102
head -c 8M /dev/urandom > vz/101/root/disk.img
echo "container 101" > vz/101/root/etc/hostname
head -c 3M /dev/urandom > vz/102/private.img
truncate -s 64M vz.img
mkfs.ext4 "${EXT4[@]}" -L vz -d vz vz.img
vzsum() { (cd "$1" && find . -type f -printf '%p %m %s\n' -exec sha256sum {} \; | sort); }
vzsum vz > vz.before

# ESP: GRUB, its config (the one-shot of slots.GrubConfig) and grubenv.
cat > embed.cfg <<EOF
search --no-floppy --set=root --file /EFI/ingot/grub.cfg
configfile /EFI/ingot/grub.cfg
EOF
grub-mkstandalone -O x86_64-efi -o BOOTX64.EFI --locales= --fonts= --themes= \
  \
  --modules="part_gpt fat" "boot/grub/grub.cfg=embed.cfg"
cat > grub.cfg <<'EOF'
set timeout=0
load_env --file /EFI/ingot/grubenv
if [ "${next_entry}" ] ; then
  set default="${next_entry}"
  set next_entry=
  save_env --file /EFI/ingot/grubenv next_entry
else
  set default="${saved_entry}"
fi
menuentry 'ingot slot a' --id ingot-a {
  linux (hd0,gpt2)/vmlinuz root=/dev/vda2 rw console=ttyS0 quiet panic=5 ingot.slot=a
  initrd (hd0,gpt2)/initrd.img
}
menuentry 'ingot slot b' --id ingot-b {
  linux (hd0,gpt3)/vmlinuz root=/dev/vda3 rw console=ttyS0 quiet panic=5 ingot.slot=b
  initrd (hd0,gpt3)/initrd.img
}
EOF
{ printf '# GRUB Environment Block\nsaved_entry=ingot-a\n'; } > grubenv
head -c $((1024 - $(stat -c %s grubenv))) /dev/zero | tr '\0' '#' >> grubenv
truncate -s 64M esp.img
mkfs.vfat -F 32 esp.img >/dev/null
mmd -i esp.img ::/EFI ::/EFI/BOOT ::/EFI/ingot
mcopy -i esp.img BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
mcopy -i esp.img grub.cfg grubenv ::/EFI/ingot/

# The disk: GPT with ESP, root-a, root-b, data.
MB=$((1024*1024/512))
truncate -s $((1 + 64 + 1600 + 1600 + 128 + 64 + 1))M disk.img
sfdisk --quiet disk.img <<EOF
label: gpt
start=$((1*MB)), size=$((64*MB)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=$((65*MB)), size=$((1600*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root-a
start=$((1665*MB)), size=$((1600*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root-b
start=$((3265*MB)), size=$((128*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=data
start=$((3393*MB)), size=$((64*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=vz
EOF
dd if=esp.img of=disk.img bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root-a.img of=disk.img bs=1M seek=65 conv=notrunc,sparse status=none
dd if=root-b.img of=disk.img bs=1M seek=1665 conv=notrunc,sparse status=none
dd if=data.img of=disk.img bs=1M seek=3265 conv=notrunc,sparse status=none
dd if=vz.img of=disk.img bs=1M seek=3393 conv=notrunc,sparse status=none

# The store, served to the guest (10.0.2.2 is the host in QEMU's user net).
ing serve --listen 127.0.0.1:$SPORT > serve.log 2>&1 &
SERVE=$!
qemu-system-x86_64 -machine q35 -accel tcg -m 1024 -smp 2 -nodefaults -display none \
  -bios /usr/share/ovmf/OVMF.fd -drive file=disk.img,format=raw,if=virtio \
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$APORT-:7443 -device virtio-net-pci,netdev=n0 \
  -serial file:serial.log -monitor unix:$WORK/mon.sock,server,nowait > qemu.log 2>&1 &
QEMU=$!
# serial.ts: each serial line with the host's time (UTC, ms).
python3 -u -c '
import sys, time, datetime, os
f = None
while f is None:
    try: f = open(sys.argv[1], "rb")
    except FileNotFoundError: time.sleep(0.2)
buf = b""
while True:
    b = f.read(65536)
    if not b:
        time.sleep(0.1); continue
    buf += b
    *lines, buf = buf.split(b"\n")
    t = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    for l in lines: print(t, l.decode("utf-8", "replace").rstrip("\r"), flush=True)
' serial.log > serial.ts 2>/dev/null &
STAMP=$!
trap 'kill $QEMU $SERVE $STAMP 2>/dev/null || true' EXIT
api() { curl -fsS --max-time 5 --cacert ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem "https://127.0.0.1:$APORT$1"; }
wait_slot() { # slot [seconds]: until the agent answers from it with it committed
  local end=$(( $(date +%s) + ${2:-3600} ))
  while :; do
    s=$(api /v1/slots/status 2>/dev/null || true)
    if [ -n "$s" ] && echo "$s" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['booted']=='$1' and d.get('default')=='$1' and not d.get('trial') else 1)"; then
      echo "$s"; return; fi
    kill -0 $QEMU 2>/dev/null || { echo "qemu exited" >&2; tail -50 serial.log >&2; exit 1; }
    [ "$(date +%s)" -lt $end ] || { echo "slot $1 not committed within ${2:-3600} s" >&2; return 1; }
    sleep 1
  done
}
t0=$(now)
wait_slot a > /dev/null
echo "slot a up, agent answering: $(echo "$(now) - $t0" | bc) s after QEMU started"
echo "127.0.0.1:$APORT" > hosts.txt
FLEET=(--hosts hosts.txt --ca ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem --slot-deadline 15m)
# The serial console from host time $1 on: boots, reboots, the agent's
# slot lines, the markers.
timeline() { awk -v t="$(date -u -d @"$1" +%H:%M:%S.%3N)" '$1 >= t' serial.ts |
  grep -a -E 'BdsDxe: (loading|starting)|Linux version|reboot: |kexec|INGOT-UP|slot|agent listening|Power down|Restarting' | cut -c1-200 || true; }

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
ups() { grep -a -c "INGOT-UP.*ingot.slot=$1" serial.log || true; }

# 1. A → B: push returns once b's trial boot committed.
t1=$(now)
ing push "$IMG_B" --slot "${FLEET[@]}"
t2=$(now)
st=$(wait_slot b)
echo "$st" | python3 -m json.tool | head -80
echo "RESULT push B (sync of b, switch, reboot, trial committed): $(echo "$t2 - $t1" | bc) s; DOWNTIME A→B (agent's record): $(echo "$st" | field 'd["last_switch"]["downtime_seconds"]') s; requirement 300 s"
echo "RESULT /etc conflicts in b's report: $(echo "$st" | field '"; ".join("%s: %s%s" % (e["path"], e["action"], " (conflict, policy %s)" % e["policy"] if e.get("conflict") else "") for e in d["slots"]["b"]["report"]["etc"])')"
timeline "$t1"

# 2. A hard reset (power cycle): GRUB's saved_entry keeps b.
if want reset; then
n=$(ups b); t1=$(now)
# (the monitor drops a command whose connection closes at once: read its echo)
python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(4096); s.sendall(b"system_reset\n"); time.sleep(2); s.recv(4096)' "$WORK/mon.sock"
until [ "$(ups b)" -gt "$n" ]; do kill -0 $QEMU || exit 1; sleep 1; done
wait_slot b > /dev/null
echo "RESULT second boot after a reset: on b again, agent answering $(echo "$(now) - $t1" | bc) s after the reset"
timeline "$t1"
fi

api_post() { curl -fsS --max-time 120 --cacert ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem -X POST "https://127.0.0.1:$APORT$1"; }
# 3. The fleet command: rollback to a, without the store; a boots unchanged.
if want rollback; then
t1=$(now)
ing rollback --slot "${FLEET[@]}"
t2=$(now)
st=$(wait_slot a)
echo "RESULT ingot rollback --slot --hosts: $(echo "$t2 - $t1" | bc) s; DOWNTIME B→A (agent's record): $(echo "$st" | field 'd["last_switch"]["downtime_seconds"]') s; booted: $(grep -a INGOT-UP serial.log | tail -1)"
timeline "$t1"

# Back to b (slot b still holds B) for the failing images, which go to a:
# a switch over the API, through firmware and GRUB.
t1=$(now)
api_post /v1/slots/switch > /dev/null
st=$(wait_slot b)
echo "RESULT switch a → b over the API (full reboot): $(echo "$(now) - $t1" | bc) s until b committed; DOWNTIME (agent's record): $(echo "$st" | field 'd["last_switch"]["downtime_seconds"]') s"
timeline "$t1"
fi

# K. kexec: b → a and back, the kernel being the same in A and B.
if want kexec; then
for to in a b; do
  t1=$(now)
  api_post "/v1/slots/switch?kexec=1" > /dev/null
  if ! st=$(wait_slot $to 900); then
    echo "RESULT kexec switch to $to: not committed within 900 s"; timeline "$t1"
    # A kexec'd kernel that hangs: a reset goes through the firmware to the default.
    python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(4096); s.sendall(b"system_reset\n"); time.sleep(2); s.recv(4096)' "$WORK/mon.sock"
    [ $to = a ] && wait_slot b > /dev/null
    break
  fi
  echo "RESULT kexec switch to $to: $(echo "$(now) - $t1" | bc) s until $to committed; DOWNTIME (agent's record): $(echo "$st" | field 'd["last_switch"]["downtime_seconds"]') s; booted: $(grep -a INGOT-UP serial.log | tail -1)"
  timeline "$t1"
done
fi

# 4. C fails its health check on trial: back on b by itself.
if want c; then
t1=$(now)
out=$(ing push "$IMG_C" --slot "${FLEET[@]}" 2>&1) && { echo "push C succeeded: $out"; exit 1; }
t2=$(now)
echo "$out" | tail -3
st=$(wait_slot b)
echo "RESULT push C (health check fails on trial): push failed after $(echo "$t2 - $t1" | bc) s, host back on b; attempt: $(echo "$st" | field 'd["attempts"][-1]["reason"][:120]')"
fi

# 5. D's init exits: the kernel panics, reboots, GRUB's one-shot is spent: b.
if want d; then
t1=$(now)
out=$(ing push "$IMG_D" --slot "${FLEET[@]}" 2>&1) && { echo "push D succeeded: $out"; exit 1; }
t2=$(now)
st=$(wait_slot b)
echo "RESULT push D (init exits, kernel panics): push failed after $(echo "$t2 - $t1" | bc) s, host back on b; attempt: $(echo "$st" | field 'd["attempts"][-1]["reason"][:120]')"
grep -a -E "INGOT-UP|Kernel panic" serial.log || true
fi

# 6. In-place reinstall to E (into slot a) with /vz mounted and untouched.
if ! want e; then kill $QEMU; exit 0; fi
t1=$(now)
ing push "$IMG_E" --slot "${FLEET[@]}"
t2=$(now)
st=$(wait_slot a)
echo "RESULT reinstall to E: $(echo "$t2 - $t1" | bc) s; DOWNTIME b→E (agent's record): $(echo "$st" | field 'd["last_switch"]["downtime_seconds"]') s"

# Afterwards, from the disk: /vz byte-identical, the data partition's
# customer file, b's /etc as the policies say.
kill $QEMU; wait $QEMU 2>/dev/null || true
dd if=disk.img of=data.out bs=1M skip=3265 count=128 status=none
got=$(debugfs -R "cat /customers/vz-101.img" data.out 2>/dev/null)
[ "$got" = "customer data" ] && echo "RESULT data partition: customer file unchanged" || { echo "data partition: customer file is '$got'"; exit 1; }
dd if=disk.img of=vz.out bs=1M skip=3393 count=64 status=none
rm -rf vz-after; mkdir vz-after; debugfs -R "rdump / vz-after" vz.out >/dev/null 2>&1
rm -rf vz-after/lost+found
vzsum vz-after > vz.after
if cmp -s <(grep -v lost+found vz.before) vz.after; then echo "RESULT /vz: every file byte-identical after the reinstall ($(wc -l < vz.after) files)"; else diff vz.before vz.after; exit 1; fi
dd if=disk.img of=root.out bs=1M skip=65 count=1600 status=none
for f in conflict.conf host-only.conf slot-image hostname; do echo "RESULT a (E):/etc/$f = $(debugfs -R "cat /etc/$f" root.out 2>/dev/null)"; done
rm -f root.out
