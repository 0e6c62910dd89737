#!/usr/bin/env bash
# Builds a small microVM guest kernel for `microvm run` from Debian's linux-source
# package: tinyconfig plus what the Linux guest needs (64-bit, serial console,
# initramfs, virtio-mmio, MP table, i8042 reset), no modules. Cached: a second run
# with the same source and config prints the cached path and does nothing else.
#
#   scripts/build-guest-kernel.sh [OUTPUT_DIR]   (default: ~/.cache/isolab/kernel)
#
# Prints the path of the bzImage and of the ELF vmlinux on stdout.
set -euo pipefail

out_dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/isolab/kernel}
tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z $tarball ]]; then
    echo "error: no /usr/src/linux-source-*.tar.xz; install it with: apt-get install linux-source build-essential flex bison bc libelf-dev libssl-dev" >&2
    exit 1
fi
version=$(basename "$tarball" .tar.xz)
# Options on top of tinyconfig. Keep in sync with docs/linux-guest.md.
options=(
    64BIT PRINTK PRINTK_TIME TTY SERIAL_8250 SERIAL_8250_CONSOLE EARLY_PRINTK
    BLK_DEV_INITRD RD_GZIP BINFMT_ELF BINFMT_SCRIPT
    PROC_FS SYSFS DEVTMPFS DEVTMPFS_MOUNT TMPFS
    X86_MPPARSE SMP X86_LOCAL_APIC X86_IO_APIC
    SERIO SERIO_I8042 KEYBOARD_ATKBD INPUT INPUT_KEYBOARD
    VIRTIO VIRTIO_MENU VIRTIO_MMIO VIRTIO_MMIO_CMDLINE_DEVICES VIRTIO_BLK VIRTIO_NET
    NET INET PACKET UNIX NETDEVICES NET_CORE BLOCK EXT4_FS
    FUTEX EPOLL EVENTFD SIGNALFD TIMERFD POSIX_TIMERS MULTIUSER
)
stamp=$(printf '%s\n' "$version" "${options[@]}" | sha256sum | cut -c1-16)
build="$out_dir/$version-$stamp"
if [[ -f $build/bzImage && -f $build/vmlinux ]]; then
    echo "$build/bzImage"
    echo "$build/vmlinux"
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/isolab-kernel-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xf "$tarball" -C "$work"
src="$work/$version"
make -C "$src" -s ARCH=x86_64 tinyconfig
args=()
for opt in "${options[@]}"; do args+=(--enable "$opt"); done
"$src/scripts/config" --file "$src/.config" "${args[@]}" --disable MODULES
make -C "$src" -s ARCH=x86_64 olddefconfig
make -C "$src" -s ARCH=x86_64 -j"$(nproc)" bzImage vmlinux
mkdir -p "$build"
cp "$src/arch/x86/boot/bzImage" "$src/vmlinux" "$src/.config" "$build/"
echo "$build/bzImage"
echo "$build/vmlinux"
