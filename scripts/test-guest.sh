#!/usr/bin/env bash
# test-guest.sh builds the tiny bootable guest disk the libvirt tests boot
# (adapters/libvirt/lvtest), offline from Debian packages: no cloud image and
# no network beyond the Debian archive.
#
#   test-guest.sh OUTDIR
#       writes OUTDIR/keel-test-guest.raw (64 MiB) and
#       OUTDIR/keel-test-guest.qcow2 and prints their paths. Skips the build
#       when both exist and are newer than this script. The downloaded .debs
#       are kept in OUTDIR/debs.
#   test-guest.sh seed OUT.iso META_FILE USER_FILE
#       writes a NoCloud seed (ISO9660, volume label cidata) holding
#       META_FILE as meta-data and USER_FILE as user-data.
#
# The disk is a vfat "superfloppy" booted by syslinux, holding the Debian
# kernel (the package linux-image-amd64 depends on) and a busybox initramfs.
# Its init loads the virtio, CD-ROM and ISO9660 modules, mounts the NoCloud
# seed (label cidata, on a virtio disk or an IDE/SATA CD-ROM) and prints to
# the serial console (ttyS0):
#
#   KEEL-GUEST booted
#   KEEL-GUEST seed: /dev/sr0                 (or: KEEL-GUEST seed: none)
#   KEEL-GUEST meta-data:
#   <meta-data lines>
#   KEEL-GUEST meta-data-end
#   KEEL-GUEST user-data-begin
#   <user-data lines>
#   KEEL-GUEST user-data-end
#   KEEL-GUEST vendor-data-begin              (when the seed has vendor-data:
#   <vendor-data lines>                        the admin user, key and
#   KEEL-GUEST vendor-data-end                 password Keel gives a guest)
#   KEEL-GUEST ready
#
# Then it stays up, printing nothing more, like a server would, unless the
# user-data has a line "keel-test: poweroff": then it prints
# "KEEL-GUEST poweroff" and powers off at once. It powers off cleanly on an
# ACPI power button press (virsh shutdown, DomainShutdown), printing
# "KEEL-GUEST acpi-poweroff" first. On each network interface, one plugged
# while it runs too, it runs one DHCP round in the background and prints
# "KEEL-GUEST ip: ethN ADDR/PREFIX".
#
# Needs: apt-get (with package lists), dpkg, busybox-static's or a
# downloaded busybox, cpio, gzip, dosfstools, mtools, syslinux,
# syslinux-common, qemu-utils; genisoimage for seeds.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin # mkfs.vfat, for users whose PATH lacks them

script=$(realpath "${BASH_SOURCE[0]}")
name=keel-test-guest

# The modules the init loads, in dependency order (there is no modules.dep in
# the package: depmod runs at install time).
modules=(
  virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  virtio_blk failover net_failover virtio_net
  scsi_common scsi_mod cdrom sr_mod libata ata_piix libahci ahci
  isofs fat vfat nls_utf8 nls_cp437 nls_ascii
  button evdev
)

log() { printf 'test-guest: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null ||
      die "$tool not found: run scripts/install-deps.sh as root"
  done
}

# fetch_deb downloads package $1 into $2 unless a .deb of it is there, and
# prints the .deb's path.
fetch_deb() {
  local pkg=$1 dir=$2 deb
  deb=$(ls "$dir/${pkg}_"*.deb 2>/dev/null | tail -n1 || true)
  if [[ -z $deb ]]; then
    local -a opts=(-qq)
    ((EUID != 0)) || opts+=(-o APT::Sandbox::User=root)
    (cd "$dir" && apt-get "${opts[@]}" download "$pkg") >&2 ||
      die "apt-get download $pkg failed (run apt-get update?)"
    deb=$(ls "$dir/${pkg}_"*.deb | tail -n1)
  fi
  echo "$deb"
}

# kernel_package prints the versioned package linux-image-amd64 depends on.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}

# copy_modules copies the listed modules from the unpacked kernel $1 into
# the initramfs tree $2 and writes their load order to $2/etc/modules.
copy_modules() {
  local kroot=$1 root=$2 m f
  mkdir -p "$root/lib/modules"
  : >"$root/etc/modules"
  for m in "${modules[@]}"; do
    f=$(find "$kroot/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
    if [[ -z $f ]]; then
      log "module $m not in the kernel package (built in?): skipped"
      continue
    fi
    case $f in
      *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
      *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
    echo "$m" >>"$root/etc/modules"
  done
}

write_init() {
  cat >"$1/init" <<'EOF'
#!/bin/sh
# The Keel test guest's init (scripts/test-guest.sh).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
for m in $(cat /etc/modules); do insmod /lib/modules/$m.ko 2>/dev/null; done
say() { echo "KEEL-GUEST $*"; }
say booted

# watch_power_button powers off when the ACPI power button sends an input
# event (virsh shutdown presses it).
watch_power_button() {
  local ev
  for ev in /sys/class/input/event*; do
    [ "$(cat $ev/device/name 2>/dev/null)" = "Power Button" ] || continue
    dd if=/dev/input/${ev##*/} bs=24 count=1 of=/dev/null 2>/dev/null
    say acpi-poweroff
    sync
    poweroff -f
  done
}
watch_power_button &

find_seed() {
  local try dev fs
  for try in $(seq 1 50); do
    for dev in /dev/sr* /dev/vd* /dev/sd* /dev/hd*; do
      [ -b "$dev" ] || continue
      for fs in iso9660 vfat; do
        mount -t $fs -o ro "$dev" /seed 2>/dev/null || continue
        if [ -f /seed/meta-data ] || [ -f /seed/user-data ]; then
          echo "$dev"
          return 0
        fi
        umount /seed
      done
    done
    sleep 0.2
  done
  return 1
}

if seed=$(find_seed); then
  say "seed: $seed"
else
  say "seed: none"
fi
say meta-data:
awk 1 /seed/meta-data 2>/dev/null # awk ends the last line
say meta-data-end
say user-data-begin
awk 1 /seed/user-data 2>/dev/null
say user-data-end
if [ -f /seed/vendor-data ]; then
  say vendor-data-begin
  awk 1 /seed/vendor-data
  say vendor-data-end
fi
say ready

if grep -q '^keel-test: poweroff' /seed/user-data 2>/dev/null; then
  say poweroff
  sync
  poweroff -f
fi

# Each network interface, those plugged later (hot-plug) too, gets one DHCP
# round in the background, once per name and MAC.
ip link set lo up
seen=" "
while :; do
  for dev in /sys/class/net/eth*; do
    [ -e "$dev" ] || continue
    n=${dev##*/}
    mac=$(cat "$dev/address" 2>/dev/null)
    case "$seen" in *" $n/$mac "*) continue ;; esac
    seen="$seen$n/$mac "
    ip link set "$n" up
    udhcpc -i "$n" -n -q -t 10 -s /etc/udhcpc.script >/dev/null 2>&1 &
  done
  sleep 1
done
EOF
  cat >"$1/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc's hook: configure the lease and report it on the console.
case $1 in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "KEEL-GUEST ip: $interface $ip/${mask:-24}" >/dev/console
    # Ping the router (or the address of a user-data line "keel-test: ping
    # ADDR") once a second and say on the console whenever the answer
    # changes: "ok" or "lost" (tests of ACLs read it).
    target=$(sed -n 's/^keel-test: ping //p' /seed/user-data 2>/dev/null | head -n 1)
    [ -n "$target" ] || target=${router%% *}
    if [ -n "$target" ] && [ ! -e /tmp/pinger ]; then
      touch /tmp/pinger
      (
        last=
        while :; do
          if ping -c 1 -W 1 "$target" >/dev/null 2>&1; then now=ok; else now=lost; fi
          [ "$now" != "$last" ] && echo "KEEL-GUEST ping $target: $now" >/dev/console
          last=$now
          sleep 1
        done
      ) &
    fi
    ;;
esac
EOF
  chmod +x "$1/init" "$1/etc/udhcpc.script"
}

# make_initramfs builds the gzipped cpio at $3 from busybox $1 and kernel $2.
make_initramfs() {
  local busybox=$1 kroot=$2 out=$3 root
  root=$(mktemp -d "$work/root.XXXX")
  mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,seed,tmp}
  cp "$busybox" "$root/bin/busybox"
  local applet
  for applet in $("$root/bin/busybox" --list); do
    [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
  done
  copy_modules "$kroot" "$root"
  write_init "$root"
  (cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -9 >"$out"
}

# make_disk writes the syslinux-booted vfat image $1 from kernel $2, initrd $3.
make_disk() {
  local img=$1 kernel=$2 initrd=$3
  rm -f "$img"
  mkfs.vfat -n KEELGUEST -C "$img" 65536 >/dev/null
  syslinux --install "$img"
  cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT keel
LABEL keel
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet panic=-1
EOF
  MTOOLS_SKIP_CHECK=1 mcopy -i "$img" "$kernel" ::vmlinuz
  MTOOLS_SKIP_CHECK=1 mcopy -i "$img" "$initrd" ::initrd.gz
  MTOOLS_SKIP_CHECK=1 mcopy -i "$img" "$work/syslinux.cfg" ::syslinux.cfg
}

build() {
  local out=$1 raw=$1/$name.raw qcow=$1/$name.qcow2
  if [[ $raw -nt $script && $qcow -nt $script ]]; then
    printf '%s\n%s\n' "$qcow" "$raw"
    return 0
  fi
  need apt-get apt-cache dpkg cpio gzip mkfs.vfat mcopy syslinux qemu-img
  mkdir -p "$out/debs"
  work=$(mktemp -d "$out/work.XXXX")
  trap 'rm -rf "$work"' EXIT

  local kpkg kroot=$work/kernel bbroot=$work/busybox
  kpkg=$(kernel_package)
  if [[ -z $kpkg ]] && ((EUID == 0)); then
    apt-get update -qq >&2 # a fresh machine may have no package lists
    kpkg=$(kernel_package)
  fi
  [[ -n $kpkg ]] || die "apt-cache depends linux-image-amd64 names no kernel (run apt-get update)"
  # Keep only the current kernel's .deb in the cache.
  find "$out/debs" -name 'linux-image-*.deb' ! -name "${kpkg}_*" -delete
  dpkg -x "$(fetch_deb "$kpkg" "$out/debs")" "$kroot"
  dpkg -x "$(fetch_deb busybox-static "$out/debs")" "$bbroot"

  local kernel
  kernel=$(ls "$kroot"/boot/vmlinuz-* | head -n1)
  make_initramfs "$bbroot/bin/busybox" "$kroot" "$work/initrd.gz"
  make_disk "$work/$name.raw" "$kernel" "$work/initrd.gz"
  qemu-img convert -f raw -O qcow2 "$work/$name.raw" "$work/$name.qcow2"
  # Rename into place: a reader never sees a half-written image.
  mv -f "$work/$name.raw" "$raw"
  mv -f "$work/$name.qcow2" "$qcow"
  printf '%s\n%s\n' "$qcow" "$raw"
}

# seed writes the NoCloud seed $1 from meta-data $2 and user-data $3.
seed() {
  (($# == 3)) || die "usage: $0 seed OUT.iso META_FILE USER_FILE"
  need genisoimage
  genisoimage -quiet -output "$1" -volid cidata -joliet -rock -graft-points \
    "meta-data=$2" "user-data=$3"
}

main() {
  case ${1:-} in
    seed) shift; seed "$@" ;;
    "" | -h | --help) die "usage: $0 OUTDIR | $0 seed OUT.iso META_FILE USER_FILE" ;;
    *) build "$1" ;;
  esac
}

main "$@"
