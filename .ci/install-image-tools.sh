#!/usr/bin/env bash
# Install buildah (Debian/Ubuntu) for `bundler image` and its tests. Idempotent and quiet.
# The tests use a private vfs store with chroot isolation (tests/support/baseimage.py),
# which works as root in a VM or a container without overlayfs or an OCI runtime.
set -euo pipefail

if command -v buildah >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-image-tools: no apt-get here; install buildah with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq buildah >/dev/null
buildah --version
