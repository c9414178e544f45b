#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that the make targets need, only those missing.
#
# Usage: tools/deps.sh GROUP...    (make up runs it with `up`, make test and make deps with `up test`)
#   up    make up / make images: debootstrap builds the base image (images/build-base.sh)
#   test  make test: real redis-server, redis-sentinel, haproxy, syslog-ng processes, keepalived -t,
#         openssl, promtool (prometheus), redis_exporter (prometheus-redis-exporter), tmux
#   ci    a bare CI runner (.ci/run): git, make, CA certificates
#   multihost  make test-multihost: fuse-overlayfs (storage of the simulated hosts' dockerd),
#         ip, iptables, redis-cli
#
# All present: one `>>` line and nothing else. Some missing: as root (with CI=true also
# through passwordless sudo) it runs apt-get install under a policy-rc.d that exits 101, so
# no packaged service starts and takes the ports the tests use, and stops and disables such
# a service that runs anyway (with CI=true: every one of the groups asked for, even when
# nothing was missing, since a runner may come with them running). Not root: it prints the
# exact command to run and exits 1.
set -euo pipefail

log() { printf '>> %s\n' "$*"; }
die() { printf '!! %s\n' "$*" >&2; exit 1; }

group_up=(debootstrap debian-archive-keyring)
group_test=(redis-server redis-sentinel redis-tools haproxy keepalived syslog-ng-core syslog-ng-mod-http openssl prometheus prometheus-redis-exporter tmux)
group_ci=(ca-certificates git make)
group_multihost=(fuse-overlayfs iproute2 iptables redis-tools)
# The command each package provides, for hosts without dpkg.
declare -A command_of=(
	[debootstrap]=debootstrap [redis-server]=redis-server [redis-sentinel]=redis-sentinel
	[redis-tools]=redis-cli [haproxy]=haproxy [keepalived]=keepalived [syslog-ng-core]=syslog-ng [openssl]=openssl
	[fuse-overlayfs]=fuse-overlayfs [iproute2]=ip [iptables]=iptables [prometheus]=promtool [prometheus-redis-exporter]=prometheus-redis-exporter [tmux]=tmux [git]=git [make]=make
)

[ $# -gt 0 ] || die "usage: $0 up|test|ci|multihost..."
want=()
for g in "$@"; do
	case $g in
	up) want+=("${group_up[@]}") ;;
	test) want+=("${group_test[@]}") ;;
	ci) want+=("${group_ci[@]}") ;;
	multihost) want+=("${group_multihost[@]}") ;;
	*) die "unknown group $g (want up, test, ci or multihost)" ;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	missing=()
	for p in "${want[@]}"; do
		c=${command_of[$p]:-}
		if [ -n "$c" ] && ! command -v "$c" >/dev/null 2>&1; then missing+=("$p"); fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		log "deps ($*): not a Debian/Ubuntu host; the commands needed are present"
		exit 0
	fi
	die "deps ($*): not a Debian/Ubuntu host; install the equivalents of these Debian packages: ${missing[*]}"
fi

missing=()
for p in "${want[@]}"; do
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

# Packaged services whose ports belong to the tests: <service>=<package>.
services=(redis-server=redis-server redis-sentinel=redis-sentinel haproxy=haproxy syslog-ng=syslog-ng-core prometheus=prometheus)

SUDO=()
root=false
if [ "$(id -u)" = 0 ]; then
	root=true
elif [ "${CI:-}" = true ] && sudo -n true 2>/dev/null; then
	SUDO=(sudo -n)
	root=true
fi

if [ ${#missing[@]} -eq 0 ]; then
	log "deps ($*): all ${#want[@]} Debian packages present"
	# A CI runner may have the services preinstalled and running: stop them below.
	[ "${CI:-}" = true ] && $root || exit 0
	stop=("${want[@]}")
else
	$root || die "deps ($*): missing Debian packages; run:
  sudo apt-get update && sudo apt-get install --no-install-recommends ${missing[*]}
(or run 'make deps' as root: it also keeps the packaged services from starting)"
	log "deps ($*): apt-get install ${missing[*]}"
	# Package installs must not start services (exit 101: "action forbidden by policy").
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
		"${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
		trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	out=$(mktemp)
	if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } </dev/null >"$out" 2>&1; then
		tail -n 30 "$out" >&2
		rm -f "$out"
		die "deps ($*): apt-get install ${missing[*]} failed"
	fi
	rm -f "$out"
	stop=("${missing[@]}")
	[ "${CI:-}" = true ] && stop=("${want[@]}")
fi

# Where such a service runs anyway (installed earlier, or a policy-rc.d that allows it), stop it.
for entry in "${services[@]}"; do
	svc=${entry%%=*} pkg=${entry#*=}
	[[ " ${stop[*]} " == *" $pkg "* ]] || continue
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		"${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		"${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
	fi
done
