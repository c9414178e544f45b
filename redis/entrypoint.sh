#!/bin/sh
# Entrypoint of the sluice/redis image (POSIX sh). One image, three commands:
#   entrypoint.sh redis        a Redis node; master or replica is decided at start (below)
#   entrypoint.sh sentinel     a Sentinel watching master "sluice"
#   entrypoint.sh healthcheck  used by the image's HEALTHCHECK, for whichever role runs
#   entrypoint.sh master       prints the master most reachable Sentinels name ("host port")
#   entrypoint.sh majority-master  prints the master more than half of all Sentinels name
# Anything else is exec'd as is (e.g. `sh` for debugging).
#
# Environment (all optional except the passwords). Every password is given as VAR or as a
# file VAR_FILE; none may contain whitespace. The Redis nodes have one ACL user per client
# (the `user` lines of redis.conf); the default user is off.
#   REDIS_PASSWORD / _FILE    the `admin` user (operators, make restore, this healthcheck);
#                             required, the container refuses to start without one
#   REDIS_REPLICATION_PASSWORD  user `replication` (masteruser of the replicas)    } Redis
#   REDIS_SENTINEL_PASSWORD     user `sentinel` (the Sentinels' auth-user); Sentinels } nodes
#                               need it too                                           } need
#   REDIS_INGEST_PASSWORD       user `ingest`                                         } each
#   REDIS_BACKUP_PASSWORD       user `backup`                                         }
#   REDIS_STATUS_PASSWORD       user `status` (make status)                           }
#   REDIS_CONSUMER_PASSWORD     user `consumer` (services/consumer)                   }
#   REDIS_MONITORING_PASSWORD   user `monitoring` (redis_exporter)                    }
#   SENTINEL_PASSWORD / _FILE   the Sentinels' own requirepass (clients and peer Sentinels);
#                               default: REDIS_PASSWORD
#   REDIS_ANNOUNCE_HOST       name others reach this container by (default: `hostname`)
#   REDIS_SENTINELS           Sentinels to ask for the master, host:port, comma separated
#                             (default sentinel-1:26379,sentinel-2:26379,sentinel-3:26379)
#   REDIS_SENTINEL_WAIT_S     how long a Redis node waits for a Sentinel answer (default 15)
#   REDIS_INITIAL_MASTER      master when no Sentinel knows one yet, i.e. first boot, as host or
#                             host:port (default redis-1; without a port, REDIS_PORT)
#   REDIS_PORT                port of this Redis node (default 6379). With host networking
#                             (terraform/modules/node) every node listens on its host's address.
#                             On one Docker network each node has its own (compose: 6379, 6380,
#                             6381): Sentinel keeps the address it resolved for a name while its
#                             link is up, and containers restarted together may swap addresses;
#                             on another port the stale address refuses the link, and Sentinel
#                             resolves the name again (RELIABILITY.md, scenario 12)
#   SENTINEL_PORT             port of this Sentinel (default 26379)
#   REDIS_MIN_REPLICAS_MAX_LAG  seconds; keep below Sentinel's down-after (default 2)
#   REDIS_MAXMEMORY             maxmemory (default 1024mb; noeviction: writes then fail with OOM,
#                               and ingest holds producers back). Keep the container's memory
#                               limit about twice as high: AOF rewrites and full syncs fork.
#   SENTINEL_MASTER_NAME      default sluice
#   SENTINEL_QUORUM           default 2
#   SENTINEL_DOWN_AFTER_MS    default 5000 (production value; tests may shorten it)
#   SENTINEL_FAILOVER_TIMEOUT_MS  default 60000
#   SENTINEL_CONFIG_DIR       default /var/lib/sentinel (mount a volume to keep Sentinel's state)
#   REDIS_ROLE_WATCH          yes (default): beside redis-server runs role_watch, which moves
#                             a stale master, or a replica chained behind one, to the master
#                             the Sentinels promoted as soon as it is back, and marks the data
#                             directory (see there); no: exec redis-server alone and leave it
#                             to Sentinel (a node never marked counts as without data)
#   REDIS_ALLOW_EMPTY_MASTER  yes: a node without data (see HAS_DATA) may start as master, as
#                             REDIS_INITIAL_MASTER or when the Sentinels name it (for one start,
#                             then remove it); default no: such a node waits for the Sentinels,
#                             asks them to fail over, and becomes a replica (await_failover)
#   REDIS_DNS_OPTIONS         resolv.conf options added at start, default "timeout:1 attempts:1"
#                             (empty: leave resolv.conf alone); see bound_dns
set -eu

REDIS_CONF_SRC=${REDIS_CONF_SRC:-/etc/sluice/redis.conf}
SENTINEL_CONF_SRC=${SENTINEL_CONF_SRC:-/etc/sluice/sentinel.conf}
ANNOUNCE=${REDIS_ANNOUNCE_HOST:-$(hostname)}
SENTINELS=${REDIS_SENTINELS:-sentinel-1:26379,sentinel-2:26379,sentinel-3:26379}
MASTER_NAME=${SENTINEL_MASTER_NAME:-sluice}
INITIAL_MASTER=${REDIS_INITIAL_MASTER:-redis-1}
case $INITIAL_MASTER in
*:*) INITIAL_PORT=${INITIAL_MASTER##*:} INITIAL_MASTER=${INITIAL_MASTER%:*} ;;
*) INITIAL_PORT=${REDIS_PORT:-6379} ;;
esac
PORT=${REDIS_PORT:-6379}
SPORT=${SENTINEL_PORT:-26379}
ROLE_FILE=/run/sluice-role

log() { printf '%s sluice-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "$*"; exit 1; }

# secret VAR: the value of VAR, or the content of the file named by VAR_FILE.
secret() {
	eval "val=\${$1:-}; file=\${$1_FILE:-}"
	if [ -n "$file" ]; then
		[ -r "$file" ] || die "$1_FILE=$file is not readable"
		val=$(cat "$file")
	fi
	case "$val" in *[[:space:]]*) die "$1 must not contain whitespace" ;; esac
	printf '%s' "$val"
}

load_password() {
	REDIS_PASSWORD=$(secret REDIS_PASSWORD) || exit 1
	[ -n "$REDIS_PASSWORD" ] || die "set REDIS_PASSWORD or REDIS_PASSWORD_FILE; refusing to start without a password"
	SENTINEL_PASSWORD=$(secret SENTINEL_PASSWORD) || exit 1
	SENTINEL_PASSWORD=${SENTINEL_PASSWORD:-$REDIS_PASSWORD}
	# redis-cli reads the password from REDISCLI_AUTH: it never shows up in `ps`. Redis nodes
	# are asked as `admin` (--user admin), Sentinels with their own password.
	REDISCLI_AUTH=$SENTINEL_PASSWORD
	export REDISCLI_AUTH
}

# user_password NAME: the password of the ACL user NAME (REDIS_<NAME>_PASSWORD), required.
user_password() {
	var=REDIS_$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')_PASSWORD
	[ "$1" = admin ] && var=REDIS_PASSWORD
	pw=$(secret "$var") || exit 1
	[ -n "$pw" ] || die "set $var or ${var}_FILE (the password of the Redis ACL user $1)"
	printf '%s' "$pw"
}

# Sentinel (resolve-hostnames) resolves names in its only thread. A stopped container's
# name is gone from Docker's DNS, which forwards the query upstream; a lost or slow reply
# would block Sentinel for libc's 5 s per try (20 s measured with an unreachable upstream),
# put it in TILT mode for 30 s and delay the failover. Bound lookups to about a second.
# Done here, in the image, so Compose, Terraform and e2e all get it. Later `options` lines
# override earlier ones; an unwritable resolv.conf is left alone.
bound_dns() {
	opts=${REDIS_DNS_OPTIONS-timeout:1 attempts:1}
	[ -n "$opts" ] || return 0
	grep -qx "options $opts" /etc/resolv.conf 2>/dev/null && return 0
	if ! { echo "options $opts" >>/etc/resolv.conf; } 2>/dev/null; then
		log "cannot write /etc/resolv.conf; DNS timeouts stay at libc defaults"
	fi
}

# is_ipv4ish HOST: HOST is written as an IPv4 address (digits and dots only).
is_ipv4ish() { case "$1" in *[!0-9.]* | '') return 1 ;; *) return 0 ;; esac; }

is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# sentinel_votes SENTINELS [SECONDS]: one line "host port" per Sentinel of SENTINELS (comma
# separated host:port) that answered with the master it names; SECONDS bounds each query
# (default 2).
sentinel_votes() {
	for s in $(printf '%s' "$1" | tr ',' ' '); do
		out=$(timeout "${2:-2}" redis-cli --raw -h "${s%:*}" -p "${s##*:}" SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null) || continue
		host=$(printf '%s\n' "$out" | sed -n 1p)
		port=$(printf '%s\n' "$out" | sed -n 2p)
		case "$host" in '' | *' '*) continue ;; esac
		is_uint "$port" || continue
		printf '%s %s\n' "$host" "$port"
	done
}

# tally: reads sentinel_votes' lines, prints "count host port" of the most named master.
tally() { sort | uniq -c | sort -rn | sed -n '1s/^ *//p'; }

# The master most of the reachable Sentinels name, as "host port"; fails if none answers.
# $1: Sentinels to ask (comma separated host:port).
ask_sentinels() {
	top=$(sentinel_votes "$1" | tally)
	[ -n "$top" ] || return 1
	printf '%s\n' "${top#* }"
}

# count_list LIST: how many entries a comma separated list has.
count_list() { printf '%s' "$1" | tr ',' '\n' | grep -c .; }

# majority_of TOTAL: reads sentinel_votes' lines and prints "host port" of the master that
# more than half of TOTAL Sentinels name (not just of those that answered); fails when
# there is no such majority.
majority_of() {
	top=$(tally)
	[ -n "$top" ] && [ "${top%% *}" -gt $(($1 / 2)) ] || return 1
	printf '%s\n' "${top#* }"
}

# admin_cli ARGS: redis-cli as the admin user (bounded to 2 s).
admin_cli() { REDISCLI_AUTH=$REDIS_PASSWORD timeout 2 redis-cli --user admin --raw "$@" 2>/dev/null; }

# HAS_DATA marks a data directory that holds this node's share of the data set: role_watch
# writes it once the node is master, or a replica whose first sync is done. Redis creates
# its AOF files at once, even on a replica that never synced, so their presence proves
# nothing; a node without the mark counts as empty (a first boot, a lost disk, a first sync
# that never finished). After an upgrade from an image without the mark, a master therefore
# hands over to a replica once (see await_failover), which loses nothing.
HAS_DATA=/data/.sluice-has-data
data_empty() { [ ! -e "$HAS_DATA" ]; }

# topology_known SENTINELS: 0 when a Sentinel lists a replica of the master (the topology
# has run before), 1 when more than half of all the Sentinels answer that they know none (a
# first boot), 2 when that cannot be told (too few answers).
topology_known() {
	empty=0
	for s in $(printf '%s' "$1" | tr ',' ' '); do
		out=$(timeout 2 redis-cli --raw -h "${s%:*}" -p "${s##*:}" SENTINEL replicas "$MASTER_NAME" 2>/dev/null) || continue
		if [ -n "$out" ]; then
			return 0 # replicas, or an error reply: not provably new
		fi
		empty=$((empty + 1))
	done
	[ "$empty" -gt $(($(count_list "$1") / 2)) ] && return 1
	return 2
}

# ask_failover SENTINELS: SENTINEL FAILOVER on the first Sentinel that takes it (OK, or a
# failover already in progress); fails when none does (e.g. NOGOODSLAVE).
ask_failover() {
	for s in $(printf '%s' "$1" | tr ',' ' '); do
		out=$(timeout 2 redis-cli --raw -h "${s%:*}" -p "${s##*:}" SENTINEL failover "$MASTER_NAME" 2>&1) || continue
		log "SENTINEL FAILOVER $MASTER_NAME on $s: $out"
		case "$out" in OK* | INPROG*) return 0 ;; esac
	done
	return 1
}

# await_failover SENTINELS: this node has no data while the Sentinels still name it master.
# Serving as master would let the replicas copy the empty data set, so it asks one Sentinel
# to fail over to the best replica (once, then again every 60 s while nothing changes: a
# forced failover skips the Sentinels' election, so asking several would start several;
# every 5 s while none takes it).
# The Sentinels also fail over by themselves after down-after, as nothing answers here. It
# waits until more than half of the Sentinels name another master, and prints it.
await_failover() {
	next_ask=0
	next_log=0
	while :; do
		now=$(date +%s)
		if m=$(sentinel_votes "$1" 1 | majority_of "$(count_list "$1")") && ! is_me "${m% *}"; then
			printf '%s\n' "$m"
			return 0
		fi
		if [ "$now" -ge "$next_ask" ]; then
			# A failover taken: give it time. None taken (no good replica yet): ask again soon.
			ask_failover "$1" && next_ask=$((now + 60)) || next_ask=$((now + 5))
		fi
		if [ "$now" -ge "$next_log" ]; then
			log "waiting for the Sentinels to promote a replica"
			next_log=$((now + 30))
		fi
		sleep 0.5
	done
}

is_me() {
	[ "$1" = "$ANNOUNCE" ] && return 0
	[ "$1" = "$(hostname)" ] && return 0
	for ip in $(hostname -i 2>/dev/null); do [ "$1" = "$ip" ] && return 0; done
	return 1
}

run_redis() {
	# PID 1 ignores signals it has no handler for: without this, `docker stop` would wait out
	# its grace period while this script waits for the Sentinels.
	trap 'exit 143' TERM INT
	load_password
	lag=${REDIS_MIN_REPLICAS_MAX_LAG:-2}
	is_uint "$lag" || die "REDIS_MIN_REPLICAS_MAX_LAG=$lag is not a whole number of seconds"
	maxmemory=${REDIS_MAXMEMORY:-1024mb}
	case $maxmemory in
	[0-9]*[0-9]mb | [0-9]*[0-9]gb | [0-9]mb | [0-9]gb) ;;
	*) die "REDIS_MAXMEMORY=$maxmemory: want a size like 1024mb or 2gb" ;;
	esac
	wait_s=${REDIS_SENTINEL_WAIT_S:-15}
	is_uint "$wait_s" || die "REDIS_SENTINEL_WAIT_S=$wait_s is not a whole number of seconds"
	is_uint "$PORT" || die "REDIS_PORT=$PORT is not a port number"
	is_uint "$INITIAL_PORT" || die "REDIS_INITIAL_MASTER=$INITIAL_MASTER:$INITIAL_PORT: want host or host:port"
	bound_dns

	# Who is master? Ask the Sentinels first: after a failover the old master must come back
	# as a replica of the new one, not as a second master with stale data. Only when no
	# Sentinel answers (first boot of the whole topology) is REDIS_INITIAL_MASTER the master,
	# and never for a node without data (it waits for the Sentinels instead): replicas still
	# pointed at it would copy its empty data set.
	allow_empty=${REDIS_ALLOW_EMPTY_MASTER:-no}
	master=""
	deadline=$(($(date +%s) + wait_s))
	next_log=0
	while :; do
		if master=$(ask_sentinels "$SENTINELS"); then
			log "Sentinels name $master as master of $MASTER_NAME"
			break
		fi
		now=$(date +%s)
		if [ "$now" -ge "$deadline" ]; then
			data_empty && [ "$allow_empty" != yes ] || break
			if [ "$now" -ge "$next_log" ]; then
				log "no Sentinel answers and /data has no data set: waiting for the Sentinels (REDIS_ALLOW_EMPTY_MASTER=yes starts $INITIAL_MASTER as an empty master)"
				next_log=$((now + 30))
			fi
		fi
		sleep 1
	done
	if [ -z "$master" ]; then
		master="$INITIAL_MASTER $INITIAL_PORT"
		log "no Sentinel answered within ${wait_s}s; first boot, $INITIAL_MASTER is master"
	fi
	mhost=${master% *}
	mport=${master#* }
	# A node without data (a lost disk, `make up` after the container and its volume were
	# removed) that the Sentinels still name master must not start as master either. It may
	# only on the first boot of the whole topology, when more than half of the Sentinels know
	# no replica yet.
	if is_me "$mhost" && data_empty && [ "$allow_empty" != yes ]; then
		known=2
		while :; do
			topology_known "$SENTINELS" && known=0 || known=$?
			[ "$known" = 2 ] || break
			log "cannot tell from the Sentinels whether $MASTER_NAME ran before; asking again"
			sleep 1
		done
		if [ "$known" = 0 ]; then
			log "the Sentinels name $ANNOUNCE master of $MASTER_NAME, but /data has no data set (a new or lost disk): it must not serve as master"
			master=$(await_failover "$SENTINELS")
			log "the Sentinels now name $master as master"
			mhost=${master% *}
			mport=${master#* }
		fi
	fi

	mkdir -p /data /var/lib/sluice-redis
	chown redis:redis /data /var/lib/sluice-redis
	chown -R redis:redis /data
	chmod 700 /var/lib/sluice-redis
	# Private writable copy: Sentinel's CONFIG REWRITE must not touch the (read-only) original.
	conf=/var/lib/sluice-redis/redis.conf
	# The ACL users: each `user NAME ...` line (but the default user's) gets `>password`
	# appended, in this private copy only (mode 600, never on a command line).
	umask 077
	: >"$conf"
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		'user default '*) ;;
		'user '*)
			name=${line#user }
			name=${name%% *}
			pw=$(user_password "$name") || exit 1
			line="$line >$pw"
			;;
		esac
		printf '%s\n' "$line" >>"$conf"
	done <"$REDIS_CONF_SRC"
	grep -q '^user replication ' "$conf" || die "$REDIS_CONF_SRC has no 'user replication' line"
	chown redis:redis "$conf"
	chmod 600 "$conf"
	echo redis >"$ROLE_FILE"

	set -- "$conf" \
		--masteruser replication --masterauth "$(user_password replication)" \
		--port "$PORT" --replica-announce-ip "$ANNOUNCE" --replica-announce-port "$PORT" \
		--min-replicas-max-lag "$lag" --maxmemory "$maxmemory"
	if is_me "$mhost"; then
		log "starting $ANNOUNCE as master"
	else
		log "starting $ANNOUNCE as replica of $mhost:$mport"
		set -- "$@" --replicaof "$mhost" "$mport"
	fi
	[ "${REDIS_ROLE_WATCH:-yes}" = yes ] || exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$@"

	# redis-server runs as a child, beside role_watch; this shell forwards SIGTERM and
	# SIGINT to it and exits with its status.
	setpriv --reuid=redis --regid=redis --init-groups redis-server "$@" &
	server=$!
	started_master=no
	is_me "$mhost" && started_master=yes
	role_watch "$started_master" &
	watch=$!
	trap 'got=1; kill "$watch" 2>/dev/null; kill -TERM "$server" 2>/dev/null' TERM INT
	while :; do
		got=0
		wait "$server" && rc=0 || rc=$?
		[ "$got" = 1 ] || break # else wait was cut short by the signal: wait again
	done
	kill "$watch" 2>/dev/null || true
	exit "$rc"
}

# info_field "HOST PORT" SECTION FIELD: FIELD of `INFO SECTION` on that Redis node, as admin;
# empty when it does not answer.
info_field() {
	admin_cli -h "${1% *}" -p "${1#* }" INFO "$2" | tr -d '\r' | sed -n "s/^$3://p"
}

# role_watch keeps this node on the master the Sentinels have promoted, at once instead of
# after Sentinel's own delays. With INGEST_MIN_REPLICAS=2 no ack is given until both replicas
# replicate the new master directly, so these delays were the stalls after a fault healed.
# Every second:
# - A master steps down to the node X that more than half of all the Sentinels name, if X
#   answers as master and X was promoted out of this node's own history (X's
#   master_replid2 is this node's master_replid: X was its replica when it was promoted),
#   or this entrypoint started this node as master less than a minute ago (the Sentinels
#   named it at start and have named X since; a replica promoted later never counts). That is a stale master: paused, cut off, or restarted while X
#   was promoted. Sentinel demotes it too, but only after it has reported itself master for
#   8 s (SENTINEL_PUBLISH_PERIOD * 4, fixed in Sentinel). The winner of a failover never
#   steps down to the node it replaced: that node's replid2 is not its replid, even while
#   the Sentinels still name the old master for a moment.
# - A replica whose master answers as a replica itself (a stale master that stepped down,
#   so this replica is chained behind it and WAIT on the new master does not count it)
#   follows the master more than half of the Sentinels name, if that node answers as
#   master. Sentinel re-points it too, but only after failover-timeout (60 s shipped). A
#   replica whose master answers as master, or does not answer, is left to Sentinel.
# - It marks the data directory (HAS_DATA) once the node is master, or a synced replica.
role_watch() {
	set +e
	total=$(count_list "$SENTINELS")
	# yes: this entrypoint started the node as master (a replica that Sentinel promotes later
	# is a failover's winner, never "started as master").
	started_master=$1
	while sleep 1; do
		role=$(admin_cli -p "$PORT" ROLE)
		case "$(printf '%s\n' "$role" | sed -n 1p)" in
		master)
			[ -e "$HAS_DATA" ] || : >"$HAS_DATA"
			;;
		slave)
			started_master=no
			if [ ! -e "$HAS_DATA" ] && [ "$(info_field "localhost $PORT" replication master_link_status)" = up ] &&
				[ "$(info_field "localhost $PORT" replication master_sync_in_progress)" = 0 ]; then
				: >"$HAS_DATA"
			fi
			mine="$(printf '%s\n' "$role" | sed -n 2p) $(printf '%s\n' "$role" | sed -n 3p)"
			[ "$(admin_cli -h "${mine% *}" -p "${mine#* }" ROLE | sed -n 1p)" = slave ] || continue
			m=$(sentinel_votes "$SENTINELS" 1 | majority_of "$total") || continue
			[ "$m" != "$mine" ] && ! is_me "${m% *}" || continue
			follow "$m" "replicating $mine, which is a replica itself; the Sentinels name $m"
			continue
			;;
		*) continue ;; # no answer (loading, stopping)
		esac
		m=$(sentinel_votes "$SENTINELS" 1 | majority_of "$total") || continue
		is_me "${m% *}" && continue
		up=
		[ "$started_master" = yes ] && up=$(info_field "localhost $PORT" server uptime_in_seconds)
		if [ -n "$up" ] && [ "$up" -lt 60 ] 2>/dev/null; then
			why="started as master $up s ago"
		elif replid2=$(info_field "$m" replication master_replid2) && [ -n "$replid2" ] &&
			[ "$replid2" = "$(info_field "localhost $PORT" replication master_replid)" ]; then
			why="${m% *} was promoted out of this node's history"
		else
			continue
		fi
		follow "$m" "a stale master ($why): the Sentinels name $m" && started_master=no
	done
}

# follow "HOST PORT" WHY: if HOST answers as master, replicate it (and drop the clients, as
# Sentinel does, so that they look for the master again); succeeds once ROLE shows it.
follow() {
	[ "$(admin_cli -h "${1% *}" -p "${1#* }" ROLE | sed -n 1p)" = master ] || return 1
	log "$2: replicating ${1% *}:${1#* } now"
	printf 'MULTI\nREPLICAOF %s %s\nCLIENT KILL TYPE normal\nCLIENT KILL TYPE pubsub\nEXEC\n' "${1% *}" "${1#* }" |
		REDISCLI_AUTH=$REDIS_PASSWORD timeout 2 redis-cli --user admin -p "$PORT" >/dev/null 2>&1
	[ "$(admin_cli -p "$PORT" ROLE | sed -n 2p)" = "${1% *}" ]
}

run_sentinel() {
	load_password
	down_after=${SENTINEL_DOWN_AFTER_MS:-5000}
	failover_timeout=${SENTINEL_FAILOVER_TIMEOUT_MS:-60000}
	quorum=${SENTINEL_QUORUM:-2}
	for v in "$down_after" "$failover_timeout" "$quorum" "$PORT" "$SPORT"; do
		is_uint "$v" || die "SENTINEL_DOWN_AFTER_MS, SENTINEL_FAILOVER_TIMEOUT_MS, SENTINEL_QUORUM, REDIS_PORT and SENTINEL_PORT must be whole numbers (got $v)"
	done
	dir=${SENTINEL_CONFIG_DIR:-/var/lib/sentinel}
	conf=$dir/sentinel.conf
	mkdir -p "$dir"

	if [ -s "$conf" ] && grep -q "^sentinel monitor $MASTER_NAME " "$conf"; then
		# Sentinel's own state from its last run (a volume): it knows the latest master and
		# config epoch, which matters after `make down` / `make up` following a failover.
		log "reusing Sentinel state in $conf"
		# Drop the secrets Sentinel's rewrite stored there (`user default ... #<hash>` would
		# override --requirepass and break a password change); they come from the arguments.
		sed -i -e '/^user /d' -e '/^requirepass /d' -e '/^masterauth /d' \
			-e '/^sentinel auth-pass /d' -e '/^sentinel auth-user /d' -e '/^sentinel sentinel-pass /d' "$conf"
		mhost=$(awk -v n="$MASTER_NAME" '$1 == "sentinel" && $2 == "monitor" && $3 == n { print $4 }' "$conf")
	else
		peers=""
		for s in $(printf '%s' "$SENTINELS" | tr ',' ' '); do
			is_me "${s%:*}" || peers="$peers,$s"
		done
		if master=$(ask_sentinels "${peers#,}"); then
			log "peer Sentinels name $master as master of $MASTER_NAME"
		else
			master="$INITIAL_MASTER $INITIAL_PORT"
			log "no peer Sentinel answered; monitoring the initial master $INITIAL_MASTER"
		fi
		mhost=${master% *}
		{
			cat "$SENTINEL_CONF_SRC"
			echo
			echo "# --- added by entrypoint.sh ---"
			# A stable id: peers recognise this Sentinel across container re-creation.
			echo "sentinel myid $(printf '%s' "$ANNOUNCE" | sha1sum | cut -c1-40)"
			echo "sentinel announce-ip $ANNOUNCE"
			echo "sentinel monitor $MASTER_NAME $mhost ${master#* } $quorum"
		} >"$conf"
	fi
	chown -R redis:redis "$dir"
	chmod 700 "$dir"
	chmod 600 "$conf"

	bound_dns
	# With resolve-hostnames, Sentinel exits if the master's name does not resolve yet
	# (its container not started); wait for Docker's DNS rather than crash-looping.
	# (An IPv4 address, as with host networking across hosts, needs no lookup: getent would
	# look for its reverse name.)
	i=0
	until is_ipv4ish "$mhost" || getent hosts "$mhost" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -le 120 ] || die "master host $mhost does not resolve"
		sleep 0.5
	done
	auth_pass=$(user_password sentinel) || exit 1
	echo sentinel >"$ROLE_FILE"
	# Tunables and secrets as arguments: they apply on every start, also over kept state.
	exec setpriv --reuid=redis --regid=redis --init-groups redis-sentinel "$conf" \
		--port "$SPORT" --requirepass "$SENTINEL_PASSWORD" \
		--sentinel auth-user "$MASTER_NAME" sentinel \
		--sentinel auth-pass "$MASTER_NAME" "$auth_pass" \
		--sentinel down-after-milliseconds "$MASTER_NAME" "$down_after" \
		--sentinel failover-timeout "$MASTER_NAME" "$failover_timeout" \
		--sentinel parallel-syncs "$MASTER_NAME" 1 \
		--sentinel announce-ip "$ANNOUNCE"
}

# Healthy Redis node: answers PING (not LOADING); a replica also has a live link to its
# master. Healthy Sentinel: knows the master and can reach quorum and a majority (CKQUORUM).
healthcheck() {
	load_password
	case "$(cat "$ROLE_FILE" 2>/dev/null)" in
	redis)
		REDISCLI_AUTH=$REDIS_PASSWORD
		[ "$(timeout 3 redis-cli --user admin --raw -p "$PORT" PING)" = PONG ] || exit 1
		info=$(timeout 3 redis-cli --user admin --raw -p "$PORT" INFO replication | tr -d '\r')
		case "$info" in
		*role:master*) exit 0 ;;
		*master_link_status:up*) exit 0 ;;
		*) exit 1 ;;
		esac
		;;
	sentinel)
		timeout 3 redis-cli --raw -p "$SPORT" SENTINEL CKQUORUM "$MASTER_NAME" | grep -q '^OK' || exit 1
		;;
	*) exit 1 ;;
	esac
}

case "${1:-redis}" in
redis) run_redis ;;
sentinel) run_sentinel ;;
healthcheck) healthcheck ;;
master)
	# Operators (and tests): which master do most reachable Sentinels name? "host port".
	load_password
	ask_sentinels "$SENTINELS" || die "no Sentinel in $SENTINELS answered"
	;;
majority-master)
	# The master more than half of all Sentinels name, which a stale master steps down to
	# and a node without data waits for (see role_watch, await_failover).
	load_password
	sentinel_votes "$SENTINELS" 1 | majority_of "$(count_list "$SENTINELS")" ||
		die "no master is named by more than half of the Sentinels in $SENTINELS"
	;;
*) exec "$@" ;;
esac
