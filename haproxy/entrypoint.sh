#!/bin/sh
# Entrypoint of the sluice/haproxy image (POSIX sh).
#   HAPROXY_STATS_PASSWORD or HAPROXY_STATS_PASSWORD_FILE  required: the stats page and the
#       Prometheus exporter sit behind basic auth, and an empty password would let anyone in.
#   HAPROXY_CONFIG  default /etc/haproxy/haproxy.cfg (mount ../haproxy/haproxy.cfg there)
# Runs HAProxy in master-worker mode (-W) in the foreground (-db): `docker kill -s USR2`
# reloads the config without dropping the listening sockets; `docker stop` (SIGTERM) stops it.
# `entrypoint.sh healthcheck` is the image's HEALTHCHECK (GET /healthz on the stats port).
set -eu

if [ "${1:-}" = healthcheck ]; then
	# bash's /dev/tcp: the image has no curl. monitor-uri needs no password.
	exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/8404 && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
fi

if [ -n "${HAPROXY_STATS_PASSWORD_FILE:-}" ]; then
	[ -r "$HAPROXY_STATS_PASSWORD_FILE" ] || { echo "HAPROXY_STATS_PASSWORD_FILE=$HAPROXY_STATS_PASSWORD_FILE is not readable" >&2; exit 1; }
	HAPROXY_STATS_PASSWORD=$(cat "$HAPROXY_STATS_PASSWORD_FILE")
	export HAPROXY_STATS_PASSWORD
fi
if [ -z "${HAPROXY_STATS_PASSWORD:-}" ]; then
	echo "set HAPROXY_STATS_PASSWORD or HAPROXY_STATS_PASSWORD_FILE; refusing to start with an open stats page" >&2
	exit 1
fi

cfg=${HAPROXY_CONFIG:-/etc/haproxy/haproxy.cfg}
if [ "$#" -gt 0 ] && [ "$1" != haproxy ]; then
	exec "$@"
fi
# Directory of the runtime API socket (stats socket in haproxy.cfg).
mkdir -p /run/haproxy
[ "$#" -gt 0 ] && shift
haproxy -c -q -f "$cfg"
exec haproxy -W -db -f "$cfg" "$@"
