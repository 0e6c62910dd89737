#!/usr/bin/env bash
# Installs the host packages isolab's models and tests use (Debian/Ubuntu, as root).
# runc/crun: the reference OCI runtimes the container model is compared with;
# qemu-system-x86: the qemu model and the Linux-guest boot test under TCG;
# busybox-static: a third-party static binary the kernel-less guest must run;
# linux-image-cloud-amd64: a guest kernel; iproute2/iptables: container networking;
# cpio: bench's cpio-made initramfs and the tests' cross-check of `microvm initramfs`
# (priority "important", so absent from minimal images such as debian:12).
set -euo pipefail
packages=(runc crun qemu-system-x86 busybox-static linux-image-cloud-amd64 file iproute2 iptables cpio)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
