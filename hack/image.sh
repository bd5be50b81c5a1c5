#!/usr/bin/env bash
# `make image`: builds the operator's image from the Dockerfile.
#
#   image.sh IMAGE
#
# With Docker: `docker build`. Without (these machines): buildah, from Debian,
# with no daemon; the base image is made here from Debian 12's packages
# (debootstrap: python3 3.11 and venv), since no registry serves images. The
# image is then written as an OCI archive and, when the local plane's real
# node runs, imported into its containerd. Prints the image's size.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${1:?usage: image.sh IMAGE}"
cache="${JOBLINE_CACHE:-$HOME/.cache/jobline}"
images="$cache/images"
base=localhost/jobline-base:bookworm
say() { echo "==> $*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  say "building $image with Docker"
  docker build -t "$image" "$repo"
  docker image ls "$image" --format 'size: {{.Size}}'
  exit 0
fi

if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
  command -v apt-get >/dev/null || { echo "need Docker, or buildah and debootstrap" >&2; exit 1; }
  say "installing buildah and debootstrap from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null
fi

# The base: Debian 12 minbase with python3 and venv, without docs, caches or
# package indexes. Rebuilt only when this recipe changes.
recipe="bookworm minbase python3 python3-venv ca-certificates v1"
key="$(echo "$recipe" | sha256sum | cut -c1-12)"
mkdir -p "$images"
if [[ "$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "jobline.base"}}' "$base" 2>/dev/null)" != "$key" ]]; then
  say "making the base image from Debian packages (debootstrap; a few minutes the first time)"
  rootfs="$(mktemp -d "$images/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >"$images/debootstrap.log" 2>&1 ||
    { tail -5 "$images/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/{doc,man,info,locale}/* \
    "$rootfs"/var/log/*
  container="$(buildah from scratch)"
  buildah copy --quiet "$container" "$rootfs" / >/dev/null
  buildah config --label "jobline.base=$key" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$container"
  buildah commit --quiet --rm "$container" "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

say "building $image from the Dockerfile with buildah (base $base)"
# --network host: the build's pip reaches PyPI as the host does; buildah's own
# network would put a bridge with a private address in the host's namespace.
# pip in the build trusts what the host's pip trusts (this machine's proxy CA).
ca=(); host_ca="${PIP_CERT:-${SSL_CERT_FILE:-}}"
[[ -n "$host_ca" && -f "$host_ca" ]] && ca=(--volume "$host_ca:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
buildah bud --quiet --isolation chroot --network host --pull=never --layers "${ca[@]}" \
  --build-arg "BASE=$base" -t "$image" "$repo" >/dev/null
archive="$images/jobline.tar"
rm -f "$archive"
buildah push --quiet "$image" "oci-archive:$archive:$image" >/dev/null
say "image $image: $(buildah images --format '{{.Size}}' "$image" | head -1) (archive $archive)"
if "$repo/hack/cluster/cluster.sh" status 2>/dev/null && [[ -S "$cache/cluster/node/containerd/containerd.sock" ]]; then
  "$repo/hack/cluster/node.sh" import "$archive"
  say "imported into the local plane's real node"
fi
