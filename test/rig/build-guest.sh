#!/usr/bin/env bash
# Builds the tiny test guest into .cache/guest: Debian's kernel (extracted, never installed) and a
# busybox initramfs with the virtio/ext4 modules, qemu-ga and the writer workload (guest/).
# Rebuilds only when the recipe changes: these scripts, guest/, the kernel/busybox/qemu-ga versions.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

rig=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${GUEST_DIR:-$(cd "$rig/../.." && pwd)/.cache/guest}
modules=(virtio_pci virtio_blk virtio_console ext4 crc32c_generic button evdev)

say() { echo "build-guest: $*"; }
die() {
  echo "build-guest: $*" >&2
  exit 1
}

# One apt-cache call (it is slow): "linux-image-6.1.0-56-amd64 6.1.192-2", from the metapackage's
# Depends, which pins the exact kernel package version.
kernel_package() {
  apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
    sed -n 's/^Depends:.*\(linux-image-[^ ,]*-amd64\) (= \([^)]*\)).*/\1 \2/p' | head -n 1
}

kernel=$(kernel_package)
if [[ -z $kernel ]]; then
  say "apt-get update (no kernel package known)"
  apt-get update -qq
  kernel=$(kernel_package)
  [[ -n $kernel ]] || die "cannot find Debian's linux-image-amd64 package"
fi
read -r package package_version <<<"$kernel"

recipe=$(
  {
    cat "$rig/build-guest.sh" "$rig"/guest/*
    echo "$package $package_version ${modules[*]}"
    dpkg-query -W -f '${Package} ${Version}\n' busybox-static qemu-guest-agent
  } | sha256sum | cut -c1-16
)

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ -f $out/vmlinuz && -f $out/initrd.img && $(cat "$out/recipe" 2>/dev/null) == "$recipe" ]]; then
  say "guest is up to date ($out)"
  exit 0
fi

started=$SECONDS
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "downloading $package $package_version"
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$package=$package_version" >/dev/null)
dpkg -x "$work"/*.deb "$work/kernel"
kernel_version=$(ls "$work/kernel/lib/modules")
kernel_modules=$work/kernel/lib/modules/$kernel_version

root=$work/root
# One bin directory (merged /usr, /sbin): guest-exec callers may use any of the usual paths.
mkdir -p "$root"/{bin,dev,proc,sys,mnt,run,tmp,var,lib/modules,lib64,usr,etc/acpi/PWRF}
ln -s bin "$root/sbin"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"
mknod -m 600 "$root/dev/console" c 5 1
cp /bin/busybox "$root/bin/busybox"
cp "$rig/guest/init" "$root/init"
cp "$rig/guest/writer.sh" "$root/bin/writer"
cp "$rig/guest/shutdown.sh" "$root/bin/shutdown"
# busybox acpid runs this on the ACPI power button (virsh shutdown --mode acpi).
printf '#!/bin/sh\nexec /bin/shutdown -h -P +0\n' >"$root/etc/acpi/PWRF/00000080"
chmod +x "$root/etc/acpi/PWRF/00000080"

# Modules uncompressed, in load order (dependencies first), for busybox insmod.
declare -A loaded=()
module_file() { find "$kernel_modules/kernel" -regextype posix-extended -regex ".*/$1\.ko(\.xz|\.zst|\.gz)?" | head -n 1; }
add_module() {
  local name=${1//-/_} file dependency
  [[ -z ${loaded[$name]:-} ]] || return 0
  loaded[$name]=1
  file=$(module_file "$1")
  [[ -n $file ]] || file=$(module_file "${1//_/-}")
  if [[ -z $file ]]; then
    grep -qE "/${1}\.ko" "$kernel_modules/modules.builtin" || die "kernel module $1 not found"
    return 0
  fi
  case $file in
  *.xz) xz -dc "$file" >"$root/lib/modules/$name.ko" ;;
  *.zst) zstd -qdc "$file" >"$root/lib/modules/$name.ko" ;;
  *.gz) gzip -dc "$file" >"$root/lib/modules/$name.ko" ;;
  *) cp "$file" "$root/lib/modules/$name.ko" ;;
  esac
  for dependency in $(tr '\000' '\n' <"$root/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1 | tr , ' '); do
    add_module "$dependency"
  done
  echo "$name" >>"$root/lib/modules/load-order"
}
for module in "${modules[@]}"; do add_module "$module"; done

# qemu-ga and the shared libraries it links, at the paths the loader looks for them.
cp /usr/sbin/qemu-ga "$root/bin/qemu-ga"
for library in $(ldd /usr/sbin/qemu-ga | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$library")"
  cp -L "$library" "$root$library"
done

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"
cp "$work/kernel/boot/vmlinuz-$kernel_version" "$work/vmlinuz"
chmod 644 "$work/vmlinuz" "$work/initrd.img"
rm -f "$out/recipe"
mv "$work/vmlinuz" "$work/initrd.img" "$out/"
echo "$recipe" >"$out/recipe"
say "built kernel $kernel_version + initramfs ($(du -h "$out/initrd.img" | cut -f1)) in $((SECONDS - started)) s"
