#!/usr/bin/env bash
# bench/slots-qemu.sh: A/B root slots on a real kernel in QEMU (TCG, OVMF,
# GRUB EFI). Builds image A and B with ingot (bench/slots.yaml + the agent),
# makes a GPT disk without mounting anything (ESP with mtools, two ext4 roots
# and a data partition with mkfs.ext4 -d), boots slot a, pushes B with
# `ingot push --slot` over QEMU's user networking, and measures the downtime
# of the switch: from push's answer (the agent reboots a second later) to the
# agent answering from slot b with b committed.
#
# Usage: sudo bash bench/slots-qemu.sh     (WORK=/var/tmp/ingot-bench-slots;
#        BASE=DIGEST STORE=DIR reuse a base image already built from bench/slots.yaml)
set -euo pipefail
WORK=${WORK:-/var/tmp/ingot-bench-slots}
REPO=$(cd "$(dirname "$0")/.." && pwd)
for t in qemu-system-x86_64 grub-mkstandalone mcopy mkfs.vfat sfdisk mkfs.ext4 curl; do
  command -v $t >/dev/null || { echo "needs $t (.ci/packages.txt)"; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 2; }
[ -f /usr/share/ovmf/OVMF.fd ] || { echo "needs ovmf"; exit 2; }

mkdir -p "$WORK"; cd "$WORK"
rm -rf overlay-a a-src b-src c-src ca keys disk.img esp.img root-a root-a.img root-b.img data data.img serial.log hosts.txt
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
  mkdir -p $o/usr/local/bin $o/etc/systemd/system/multi-user.target.wants $o/etc/ingot $o/boot/efi $o/data
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
  printf '/dev/vda1 /boot/efi vfat defaults 0 0\n/dev/vda4 /data ext4 defaults 0 0\n' > $o/etc/fstab
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
  keep: [/data, /boot/efi]
  boot: {type: grub, grubenv: /boot/efi/EFI/ingot/grubenv}
  reboot: [systemctl, reboot]
  etc_default: keep-host
  health: {deadline: 3m, checks: [{tcp: "127.0.0.1:7443"}]}
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
ing image sign "$IMG_A" --key keys/release.key

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
# Image B: A with another /etc/slot-image and without the host's own files.
rm -rf b-src; cp -a a-src b-src
rm -rf b-src/etc/hostname b-src/etc/ingot/*
echo B > b-src/etc/slot-image
IMG_B=$(ing image import b-src --delta-from "$IMG_A")
ing image sign "$IMG_B" --key keys/release.key
# Image C: B whose init exits at once (the kernel panics and, with
# panic=5, reboots).
rm -rf c-src; cp -a b-src c-src
echo C > c-src/etc/slot-image
rm -f c-src/usr/sbin/init
printf '#!/bin/sh\nexit 1\n' > c-src/usr/sbin/init; chmod 755 c-src/usr/sbin/init
IMG_C=$(ing image import c-src --delta-from "$IMG_B")
ing image sign "$IMG_C" --key keys/release.key
echo "A=$IMG_A B=$IMG_B C=$IMG_C"
EXT4=(-q -F -O ^orphan_file,^metadata_csum_seed)
truncate -s 1600M root-a.img root-b.img
mkfs.ext4 "${EXT4[@]}" -L root-a -d root-a root-a.img
mkfs.ext4 "${EXT4[@]}" -L root-b root-b.img
mkdir -p data/ingot-slots data/customers
echo "customer data" > data/customers/vz-101.img
truncate -s 128M data.img
mkfs.ext4 "${EXT4[@]}" -L data -d data data.img

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
truncate -s $((1 + 64 + 1600 + 1600 + 128 + 1))M disk.img
sfdisk --quiet disk.img <<EOF
label: gpt
start=$((1*MB)), size=$((64*MB)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=$((65*MB)), size=$((1600*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root-a
start=$((1665*MB)), size=$((1600*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root-b
start=$((3265*MB)), size=$((128*MB)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=data
EOF
dd if=esp.img of=disk.img bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root-a.img of=disk.img bs=1M seek=65 conv=notrunc,sparse status=none
dd if=root-b.img of=disk.img bs=1M seek=1665 conv=notrunc,sparse status=none
dd if=data.img of=disk.img bs=1M seek=3265 conv=notrunc,sparse status=none

# The store, served to the guest (10.0.2.2 is the host in QEMU's user net).
ing serve --listen 127.0.0.1:$SPORT > serve.log 2>&1 &
SERVE=$!
qemu-system-x86_64 -machine q35 -accel tcg -m 1024 -smp 2 -nodefaults -display none \
  -bios /usr/share/ovmf/OVMF.fd -drive file=disk.img,format=raw,if=virtio \
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$APORT-:7443 -device virtio-net-pci,netdev=n0 \
  -serial file:serial.log > qemu.log 2>&1 &
QEMU=$!
trap 'kill $QEMU $SERVE 2>/dev/null || true' EXIT
api() { curl -fsS --max-time 5 --cacert ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem "https://127.0.0.1:$APORT$1"; }
wait_slot() { # slot: until the agent answers from it with it committed
  while :; do
    s=$(api /v1/slots/status 2>/dev/null || true)
    if [ -n "$s" ] && echo "$s" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['booted']=='$1' and d.get('default')=='$1' and not d.get('trial') else 1)"; then
      echo "$s"; return; fi
    kill -0 $QEMU 2>/dev/null || { echo "qemu exited"; tail -50 serial.log; exit 1; }
    sleep 1
  done
}
t0=$(now)
wait_slot a > /dev/null
echo "slot a up, agent answering: $(echo "$(now) - $t0" | bc) s after QEMU started"
echo "127.0.0.1:$APORT" > hosts.txt
t1=$(now)
ing push "$IMG_B" --hosts hosts.txt --slot --ca ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem
t2=$(now)
echo "slot sync of b and switch: $(echo "$t2 - $t1" | bc) s"
st=$(wait_slot b)
t3=$(now)
echo "$st" | python3 -m json.tool | head -60
echo "DOWNTIME A→B: $(echo "$t3 - $t2" | bc) s (push answered → agent on b answering, b committed); requirement: 300 s"

# Rollback to a, over the API (no store needed): a boots unchanged.
t1=$(now)
curl -fsS --cacert ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem -X POST "https://127.0.0.1:$APORT/v1/slots/rollback" > /dev/null
st=$(wait_slot a)
t2=$(now)
echo "DOWNTIME rollback B→A: $(echo "$t2 - $t1" | bc) s; agent's record: $(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_switch"]["downtime_seconds"])') s"

# C does not boot: after the switch the host comes back on a by itself.
t1=$(now)
ing push "$IMG_C" --hosts hosts.txt --slot --ca ca/ca.pem --cert ca/ctl.pem --key ca/ctl-key.pem
t2=$(now)
echo "slot sync of C into b and switch: $(echo "$t2 - $t1" | bc) s"
sleep 5
while :; do
  s=$(api /v1/slots/status 2>/dev/null || true)
  if [ -n "$s" ] && echo "$s" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['booted']=='a' and not d.get('trial') and d.get('attempts') else 1)"; then break; fi
  kill -0 $QEMU 2>/dev/null || { echo "qemu exited"; tail -50 serial.log; exit 1; }
  sleep 1
done
t3=$(now)
echo "$s" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("failed attempt:", json.dumps(d["attempts"][-1])); print("booted", d["booted"], "default", d["default"])'
echo "C failed and the host was back on a, agent answering: $(echo "$t3 - $t2" | bc) s after the switch"
grep -a -E "INGOT-UP|Kernel panic" serial.log || true

# The data partition after all of it: the customer file is unchanged.
kill $QEMU; wait $QEMU 2>/dev/null || true
dd if=disk.img of=data.out bs=1M skip=3265 count=128 status=none
got=$(debugfs -R "cat /customers/vz-101.img" data.out 2>/dev/null)
[ "$got" = "customer data" ] && echo "data partition: customer file unchanged" || { echo "data partition: customer file is '$got'"; exit 1; }
