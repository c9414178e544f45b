#!/usr/bin/env bash
# Makes every Sentinel forget a node that is gone for good (a host replaced, see
# RELIABILITY.md "Replacing a host"), safely: SENTINEL RESET on one Sentinel at a time, and
# the next only after the reset one knows the master, the expected replicas and every
# other Sentinel again, so a quorum with full knowledge always exists.
#
# Usage: SENTINEL_PASSWORD=... tools/sentinel-reset.sh HOST:PORT[,HOST:PORT...]
# Env:   SENTINEL_PASSWORD  the Sentinels' requirepass (terraform: sha256 of "<redis_password>/sentinels")
#        MASTER_NAME        default sluice
#        EXPECT_REPLICAS    replicas each Sentinel must see again (default: Sentinels - 1)
#        RESET_TIMEOUT_S    per Sentinel (default 60)
set -euo pipefail

die() { printf 'sentinel-reset: %s\n' "$*" >&2; exit 1; }
log() { printf 'sentinel-reset: %s\n' "$*" >&2; }

[ $# -eq 1 ] || die "usage: SENTINEL_PASSWORD=... $0 HOST:PORT[,HOST:PORT...]"
[ -n "${SENTINEL_PASSWORD:-}" ] || die "set SENTINEL_PASSWORD (the Sentinels' requirepass)"
export REDISCLI_AUTH=$SENTINEL_PASSWORD
name=${MASTER_NAME:-sluice}
IFS=, read -r -a sentinels <<<"$1"
n=${#sentinels[@]}
[ "$n" -ge 3 ] || die "want at least three Sentinels, got $n"
expect=${EXPECT_REPLICAS:-$((n - 1))}
timeout_s=${RESET_TIMEOUT_S:-60}

cli() { local s=$1; shift; timeout 5 redis-cli --raw -h "${s%:*}" -p "${s##*:}" "$@"; }

# field SENTINEL FIELD: a field of SENTINEL MASTER <name> on that Sentinel.
field() { cli "$1" SENTINEL MASTER "$name" | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'; }

master_of() { cli "$1" SENTINEL get-master-addr-by-name "$name" | paste -sd: -; }

for s in "${sentinels[@]}"; do
	# Every Sentinel must agree on the master before one forgets what it knows.
	m=$(master_of "${sentinels[0]}") || die "${sentinels[0]} does not answer"
	for o in "${sentinels[@]}"; do
		[ "$(master_of "$o")" = "$m" ] || die "the Sentinels disagree on the master ($o names $(master_of "$o" || echo nothing), ${sentinels[0]} names $m): wait for the failover to finish"
	done
	log "$s: SENTINEL RESET $name (master $m)"
	[ "$(cli "$s" SENTINEL RESET "$name")" = 1 ] || die "$s: SENTINEL RESET $name failed"
	deadline=$(($(date +%s) + timeout_s))
	while :; do
		replicas=$(field "$s" num-slaves || echo 0)
		peers=$(field "$s" num-other-sentinels || echo 0)
		if [ "$(master_of "$s")" = "$m" ] && [ "${replicas:-0}" -ge "$expect" ] && [ "${peers:-0}" -ge $((n - 1)) ]; then
			log "$s: knows $m, $replicas replicas, $peers other Sentinels"
			break
		fi
		[ "$(date +%s)" -lt "$deadline" ] || die "$s: after ${timeout_s}s it sees ${replicas:-?} replicas (want $expect) and ${peers:-?} other Sentinels (want $((n - 1))); stopping before the next reset"
		sleep 1
	done
done
log "done: every Sentinel forgot the nodes that are gone"
