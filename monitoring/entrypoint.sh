#!/bin/bash
# Entrypoint of the sluice/monitoring image (Prometheus 2.42 and redis_exporter from Debian).
#   entrypoint.sh prometheus [flags]       Prometheus on :9090 with /etc/sluice/monitoring/prometheus.yml
#       HAPROXY_STATS_USER (default admin) and HAPROXY_STATS_PASSWORD or
#       HAPROXY_STATS_PASSWORD_FILE (required): basic auth of HAProxy's /metrics. Prometheus
#       2.42 reads no environment, so the user is written into a copy of the config and the
#       password into a file (basic_auth.password_file), both under /run/sluice-monitoring.
#       PROMETHEUS_RETENTION  default 15d
#   entrypoint.sh redis-exporter [flags]   redis_exporter on :9121 in multi-target mode
#       (GET /scrape?target=redis://host:6379), with the length of data_queue (redis_key_size)
#       REDIS_PASSWORD or REDIS_PASSWORD_FILE (required): password of every Redis node, for
#       the ACL user REDIS_USER (the shipped stack: monitoring).
#   entrypoint.sh healthcheck prometheus|redis-exporter   the image's HEALTHCHECK
set -euo pipefail

die() { echo "$*" >&2; exit 1; }

# http_ok PORT PATH: GET on loopback answers 200 (bash's /dev/tcp: the image has no curl).
http_ok() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
	local status
	IFS= read -r -t 5 status <&3 || return 1
	[[ $status == HTTP/1.?" 200"* ]]
}

# secret NAME: the value of $NAME, or the contents of the file $NAME_FILE.
secret() {
	local file_var="${1}_FILE"
	if [ -n "${!file_var:-}" ]; then
		[ -r "${!file_var}" ] || die "$file_var=${!file_var} is not readable"
		cat "${!file_var}"
		return
	fi
	printf '%s' "${!1:-}"
}

conf=/etc/sluice/monitoring
run=/run/sluice-monitoring
cmd=${1:-prometheus}
[ "$#" -gt 0 ] && shift

case $cmd in
healthcheck)
	case ${1:-} in
	prometheus) http_ok 9090 /-/ready ;;
	redis-exporter) http_ok 9121 /health ;;
	*) die "usage: $0 healthcheck prometheus|redis-exporter" ;;
	esac
	;;
prometheus)
	password=$(secret HAPROXY_STATS_PASSWORD)
	[ -n "$password" ] || die "set HAPROXY_STATS_PASSWORD or HAPROXY_STATS_PASSWORD_FILE (basic auth of HAProxy's /metrics)"
	user=${HAPROXY_STATS_USER:-admin}
	[[ $user != *[\"\\]* ]] || die "HAPROXY_STATS_USER must not contain \" or \\"
	mkdir -p "$run"
	(umask 077 && printf '%s' "$password" >"$run/haproxy-stats-password")
	config=$(<"$conf/prometheus.yml")
	printf '%s\n' "${config//__HAPROXY_STATS_USER__/$user}" >"$run/prometheus.yml"
	cp "$conf/rules.yml" "$run/rules.yml"
	exec prometheus --config.file="$run/prometheus.yml" --storage.tsdb.path=/prometheus \
		--storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-15d}" --web.listen-address=:9090 "$@"
	;;
redis-exporter)
	REDIS_PASSWORD=$(secret REDIS_PASSWORD)
	[ -n "$REDIS_PASSWORD" ] || die "set REDIS_PASSWORD or REDIS_PASSWORD_FILE"
	export REDIS_PASSWORD
	unset REDIS_PASSWORD_FILE
	# -redis.addr "": /metrics has only the exporter's own metrics; nodes come through /scrape.
	exec prometheus-redis-exporter -web.listen-address=:9121 -redis.addr= \
		-check-single-keys=db0=data_queue "$@"
	;;
*)
	exec "$cmd" "$@"
	;;
esac
