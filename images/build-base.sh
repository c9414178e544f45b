#!/usr/bin/env bash
# Builds the sluice base image from Debian bookworm packages, offline-friendly:
#   debootstrap --variant=minbase --include=<images/base-packages.txt> bookworm ROOTFS MIRROR
#   trim (apt lists, docs, man pages, locales) | docker import - sluice/base:<hash>
# <hash> is derived from this script and the package list, so the ~45 s build is skipped
# whenever an image with that tag (or a cached tarball of it) already exists.
#
# Usage: images/build-base.sh            prints the image name (sluice/base:<hash>) on stdout
# Env:   BASE_FROM         debootstrap (default: offline, needs root and debootstrap) or registry
#                          (docker build of images/base/Dockerfile FROM DEBIAN_IMAGE, default
#                          debian:bookworm-slim: for hosts that reach a container registry;
#                          no root, no debootstrap)
#        DEBIAN_MIRROR     mirror URL (default: the host's apt source for the suite,
#                          else http://deb.debian.org/debian)
#        DEBIAN_SECURITY_MIRROR  default: the host's source for <suite>-security, else
#                          http://deb.debian.org/debian-security (updates are applied)
#        DEBIAN_SUITE      default bookworm
#        SLUICE_CACHE_DIR  where the rootfs tarball is kept (default: <repo>/.cache, gitignored)
#        BASE_IMAGE_REPO   default sluice/base
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
suite=${DEBIAN_SUITE:-bookworm}
image_repo=${BASE_IMAGE_REPO:-sluice/base}
cache=${SLUICE_CACHE_DIR:-$repo/.cache}/base

log() { printf '>> %s\n' "$*" >&2; }

# host_mirror SUITE: the host's apt mirror for SUITE (a Debian host); on other distributions
# (Ubuntu CI runners) nothing matches and the caller falls back to deb.debian.org.
host_mirror() {
	local m=""
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk -v suite="$1" '
			function flush() { if (uri != "" && (" " suites " ") ~ (" " suite " ")) { print uri; found = 1; exit } uri = ""; suites = "" }
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { suites = $0; sub(/^Suites:[[:space:]]*/, "", suites) }
			END { if (!found) flush() }' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk -v suite="$1" '$1 == "deb" { sub(/\[[^]]*\][[:space:]]*/, ""); if ($3 == suite) { print $2; exit } }' /etc/apt/sources.list)
	fi
	printf '%s' "$m"
}

packages=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/base-packages.txt" | tr -d ' \t' | sort -u | paste -sd, -)
from=${BASE_FROM:-debootstrap}
debian_image=${DEBIAN_IMAGE:-debian:bookworm-slim}
case $from in
debootstrap) hash=$( { cat "$0"; printf '%s\n' "$suite" "$packages"; } | sha256sum | cut -c1-12) ;;
registry) hash=registry-$( { cat "$0" "$here/base/Dockerfile"; printf '%s\n' "$debian_image" "$packages"; } | sha256sum | cut -c1-12) ;;
*) log "BASE_FROM=$from: want debootstrap or registry"; exit 2 ;;
esac
image="$image_repo:$hash"

if docker image inspect "$image" >/dev/null 2>&1; then
	log "base image $image is up to date"
	echo "$image"
	exit 0
fi

if [ "$from" = registry ]; then
	log "docker build $image FROM $debian_image with $packages"
	out=$(DOCKER_BUILDKIT=0 docker build -q --build-arg DEBIAN_IMAGE="$debian_image" \
		--build-arg PACKAGES="${packages//,/ }" -t "$image" "$here/base" 2>&1) || { echo "$out" >&2; exit 1; }
	echo "$image"
	exit 0
fi

mkdir -p "$cache"
# Serialise concurrent builds (several people / CI jobs may run `make images` at once).
exec 9>"$cache/lock"
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then
	log "base image $image was built meanwhile"
	echo "$image"
	exit 0
fi

tarball="$cache/base-$hash.tar"
if [ ! -s "$tarball" ]; then
	mirror=${DEBIAN_MIRROR:-$(host_mirror "$suite")}
	mirror=${mirror:-http://deb.debian.org/debian}
	security=${DEBIAN_SECURITY_MIRROR:-$(host_mirror "$suite-security")}
	security=${security:-http://deb.debian.org/debian-security}
	command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
	[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }

	rootfs="$cache/rootfs-$hash"
	rm -rf "$rootfs"
	log "debootstrap $suite from $mirror with $packages (about a minute)"
	start=$(date +%s)
	if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -n 30 "$cache/debootstrap.log" >&2
		log "debootstrap failed; full log in $cache/debootstrap.log"
		exit 1
	fi
	log "debootstrap took $(($(date +%s) - start)) s"

	# Security and point-release updates (debootstrap installs the release as it was).
	printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
		"$mirror" "$suite" "$mirror" "$suite" "$security" "$suite" >"$rootfs/etc/apt/sources.list"
	log "apt-get upgrade from $suite-updates and $security"
	if ! { chroot "$rootfs" apt-get update -qq && DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -y -qq upgrade; } </dev/null >>"$cache/debootstrap.log" 2>&1; then
		tail -n 30 "$cache/debootstrap.log" >&2
		log "apt-get upgrade in the rootfs failed; full log in $cache/debootstrap.log"
		exit 1
	fi
	chroot "$rootfs" apt-get clean

	# Trim: nothing in the image downloads packages, reads docs or switches locale.
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
		"$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian \
		"$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/debootstrap
	# Keep the licence texts (copyright files); drop the rest of /usr/share/doc.
	find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	# Debian's packages ship an enabled redis/haproxy config; the sluice images use their own.
	rm -f "$rootfs/etc/redis/redis.conf" "$rootfs/etc/redis/sentinel.conf"
	printf 'sluice-base\n' >"$rootfs/etc/hostname"

	tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$rootfs"
fi

log "docker import $image"
docker import \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENV LANG=C.UTF-8' \
	--change "LABEL org.opencontainers.image.title=sluice-base io.sluice.base.hash=$hash io.sluice.base.packages=$packages" \
	--change 'CMD ["/bin/sh"]' \
	- "$image" <"$tarball" >/dev/null
# Old tarballs are useless once their inputs changed.
find "$cache" -maxdepth 1 -name 'base-*.tar' -not -name "base-$hash.tar" -delete
echo "$image"
