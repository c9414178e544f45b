#!/bin/sh
# Entrypoint of the sluice/haproxy image (POSIX sh).
#   HAPROXY_STATS_PASSWORD or HAPROXY_STATS_PASSWORD_FILE  required: the stats page and the
#       Prometheus exporter sit behind basic auth, and an empty password would let anyone in.
#   HAPROXY_CONFIG      default /etc/haproxy/haproxy.cfg (mount ../haproxy/haproxy.cfg there)
#   HAPROXY_STATS_PORT  port of the stats frontend the healthcheck asks (default 8404)
# Runs HAProxy in master-worker mode (-W) in the foreground (-db): `docker kill -s USR2`
# reloads the config without dropping the listening sockets; `docker stop` (SIGTERM) stops it.
# `entrypoint.sh healthcheck` is the image's HEALTHCHECK (GET /healthz on the stats port).
#
# A virtual IP shared by two HAProxy hosts (terraform/modules/node, host networking): with
# KEEPALIVED_VIP set, keepalived runs beside HAProxy and holds the address while this
# HAProxy is healthy and has the highest priority of the live pair (VRRP over unicast; the
# container needs NET_ADMIN and NET_RAW). Without KEEPALIVED_VIP nothing changes.
#   KEEPALIVED_VIP             the virtual IPv4 address
#   KEEPALIVED_VIP_PREFIX      its prefix length (default 32)
#   KEEPALIVED_INTERFACE       host interface for the address and VRRP (default eth0)
#   KEEPALIVED_PRIORITY        1-254; the primary has the higher one (default 100)
#   KEEPALIVED_ROUTER_ID       virtual_router_id 1-255 shared by the pair (default 51)
#   KEEPALIVED_UNICAST_SRC_IP  this host's address (required with KEEPALIVED_VIP)
#   KEEPALIVED_UNICAST_PEER    the other HAProxy host's address (required with KEEPALIVED_VIP)
#   KEEPALIVED_ADVERT_INT      seconds between adverts (default 1: the backup takes over
#                              about 3 adverts + skew after the primary goes silent)
#   KEEPALIVED_CONFIG          where the rendered config goes (default /etc/keepalived/keepalived.conf)
# `entrypoint.sh keepalived-config` prints the config these variables render to.
set -eu

die() { echo "sluice-haproxy: $*" >&2; exit 1; }

stats_port=${HAPROXY_STATS_PORT:-8404}
case $stats_port in '' | *[!0-9]*) die "HAPROXY_STATS_PORT=$stats_port is not a port number" ;; esac

if [ "${1:-}" = healthcheck ]; then
	# bash's /dev/tcp: the image has no curl. monitor-uri needs no password.
	exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$stats_port"' && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
fi

is_ipv4() {
	printf '%s\n' "$1" | grep -Eq '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$'
}

# in_range VALUE MIN MAX: VALUE is a whole number from MIN to MAX.
in_range() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	[ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# keepalived_config prints keepalived.conf for the KEEPALIVED_* variables, or fails naming
# the bad one.
keepalived_config() {
	vip=${KEEPALIVED_VIP:-}
	prefix=${KEEPALIVED_VIP_PREFIX:-32}
	iface=${KEEPALIVED_INTERFACE:-eth0}
	prio=${KEEPALIVED_PRIORITY:-100}
	rid=${KEEPALIVED_ROUTER_ID:-51}
	src=${KEEPALIVED_UNICAST_SRC_IP:-}
	peer=${KEEPALIVED_UNICAST_PEER:-}
	advert=${KEEPALIVED_ADVERT_INT:-1}
	is_ipv4 "$vip" || die "KEEPALIVED_VIP=$vip is not an IPv4 address"
	in_range "$prefix" 1 32 || die "KEEPALIVED_VIP_PREFIX=$prefix is not a prefix length (1-32)"
	printf '%s\n' "$iface" | grep -Eq '^[A-Za-z0-9_.@-]{1,15}$' || die "KEEPALIVED_INTERFACE=$iface is not an interface name"
	in_range "$prio" 1 254 || die "KEEPALIVED_PRIORITY=$prio is not a priority (1-254)"
	in_range "$rid" 1 255 || die "KEEPALIVED_ROUTER_ID=$rid is not a virtual router id (1-255)"
	is_ipv4 "$src" || die "KEEPALIVED_UNICAST_SRC_IP=$src is not an IPv4 address (this host's)"
	is_ipv4 "$peer" || die "KEEPALIVED_UNICAST_PEER=$peer is not an IPv4 address (the other HAProxy host's)"
	[ "$peer" != "$src" ] || die "KEEPALIVED_UNICAST_PEER must differ from KEEPALIVED_UNICAST_SRC_IP"
	in_range "$advert" 1 255 || die "KEEPALIVED_ADVERT_INT=$advert is not a whole number of seconds (1-255)"
	cat <<CONF
# Rendered by sluice-haproxy from KEEPALIVED_* (do not edit: the next start rewrites it).
global_defs {
    router_id sluice-haproxy-$src
    # The check script runs as root inside this container; nothing else runs scripts.
    script_user root
    enable_script_security
}

# HAProxy alive: its stats frontend answers /healthz. Failing twice puts this instance in
# FAULT, which gives up the virtual IP.
vrrp_script chk_haproxy {
    script "/usr/bin/env HAPROXY_STATS_PORT=$stats_port /usr/local/bin/sluice-haproxy healthcheck"
    interval 1
    timeout 2
    fall 2
    rise 2
}

vrrp_instance sluice {
    # Both start as BACKUP; the higher priority wins the election and takes the address back
    # when it returns (preemption).
    state BACKUP
    interface $iface
    virtual_router_id $rid
    priority $prio
    advert_int $advert
    unicast_src_ip $src
    unicast_peer {
        $peer
    }
    virtual_ipaddress {
        $vip/$prefix dev $iface
    }
    track_script {
        chk_haproxy
    }
}
CONF
}

if [ "${1:-}" = keepalived-config ]; then
	keepalived_config
	exit 0
fi

if [ -n "${HAPROXY_STATS_PASSWORD_FILE:-}" ]; then
	[ -r "$HAPROXY_STATS_PASSWORD_FILE" ] || die "HAPROXY_STATS_PASSWORD_FILE=$HAPROXY_STATS_PASSWORD_FILE is not readable"
	HAPROXY_STATS_PASSWORD=$(cat "$HAPROXY_STATS_PASSWORD_FILE")
	export HAPROXY_STATS_PASSWORD
fi
if [ -z "${HAPROXY_STATS_PASSWORD:-}" ]; then
	die "set HAPROXY_STATS_PASSWORD or HAPROXY_STATS_PASSWORD_FILE; refusing to start with an open stats page"
fi

cfg=${HAPROXY_CONFIG:-/etc/haproxy/haproxy.cfg}
if [ "$#" -gt 0 ] && [ "$1" != haproxy ]; then
	exec "$@"
fi
# Directory of the runtime API socket (stats socket in haproxy.cfg).
mkdir -p /run/haproxy
[ "$#" -gt 0 ] && shift
haproxy -c -q -f "$cfg"
[ -n "${KEEPALIVED_VIP:-}" ] || exec haproxy -W -db -f "$cfg" "$@"

# With a virtual IP: HAProxy and keepalived side by side under this shell, which forwards
# SIGTERM/SIGINT to both and stops the other when one exits (keepalived then removes the
# address, and the peer takes it within a few adverts).
kconf=${KEEPALIVED_CONFIG:-/etc/keepalived/keepalived.conf}
# A restarted container keeps /run: keepalived would take a stale pid file whose pid now
# belongs to another process for a running keepalived and exit.
rm -f /run/keepalived.pid /run/keepalived_vrrp.pid /run/keepalived_checkers.pid
mkdir -p "$(dirname "$kconf")"
keepalived_config >"$kconf"
keepalived -t -f "$kconf" >/dev/null 2>&1 || die "keepalived rejects $kconf: $(keepalived -t -f "$kconf" 2>&1 | tail -n 3)"
# bash for `wait -n` (the first of the two to exit); POSIX sh has only `wait` for all.
exec bash -c '
	cfg=$1 kconf=$2
	shift 2
	haproxy -W -db -f "$cfg" "$@" &
	hpid=$!
	keepalived --dont-fork --log-console --no-syslog -f "$kconf" -p /run/keepalived.pid &
	kpid=$!
	trap "kill -TERM $hpid $kpid 2>/dev/null" TERM INT
	trap "kill -USR2 $hpid 2>/dev/null" USR2 # reloads HAProxy, as without keepalived
	while :; do
		wait -n
		rc=$?
		kill -0 "$hpid" 2>/dev/null && kill -0 "$kpid" 2>/dev/null || break # else a signal woke wait
	done
	kill -0 "$hpid" 2>/dev/null || echo "sluice-haproxy: haproxy exited ($rc); stopping keepalived" >&2
	kill -0 "$kpid" 2>/dev/null || echo "sluice-haproxy: keepalived exited ($rc); stopping haproxy" >&2
	kill -TERM "$hpid" "$kpid" 2>/dev/null
	wait
	exit "$rc"
' sluice-haproxy "$cfg" "$kconf" "$@"
