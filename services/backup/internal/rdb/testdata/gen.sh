#!/bin/sh
# Regenerates the RDB fixtures with the host's redis-server (7.0.15 when they
# were committed). Run from this directory: sh gen.sh
# Every value type and list encoding Redis 7.0 writes is represented, so the
# parser is compared with redis-check-rdb on all of them (rdb_test.go).
set -eu
dir=$(mktemp -d)
port=${PORT:-16999}
trap 'redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
  --enable-debug-command yes --daemonize yes --logfile "$dir/log"
sleep 0.5
c() { redis-cli -p "$port" "$@" >/dev/null; }

# empty.rdb: no keys at all
c save && cp "$dir/dump.rdb" empty.rdb

# data_queue: 3000 elements, listpack nodes; "msg-N" strings, every 7th a bare integer
i=0; args=""
while [ $i -lt 3000 ]; do
  if [ $((i % 7)) -eq 0 ]; then args="$args $i"; else args="$args msg-$i"; fi
  i=$((i + 1))
  if [ $((i % 500)) -eq 0 ]; then c rpush data_queue $args; args=""; fi
done
# compressed quicklist nodes (LZF inside the RDB)
c config set list-compress-depth 1
c rpush compressed $(seq -f 'compressible-payload-%g-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 1 2000)
c config set list-compress-depth 0
# plain quicklist nodes: elements above the packed threshold
c debug quicklist-packed-threshold 100
c rpush plain small "$(printf 'p%.0s' $(seq 1 300))" small2 "$(printf 'q%.0s' $(seq 1 500))"
c debug quicklist-packed-threshold 1073741824
c rpush negative -1 -200 -70000 -5000000000 4294967296 12 4095 -4096 123456789012
c set counter 12345
c set text "$(printf 'x%.0s' $(seq 1 200))"
c set ttl-key v px 999999999
c sadd intset 1 2 3 100000
c sadd bigset a b c "$(printf 's%.0s' $(seq 1 100))"
c hset smallhash f1 v1 f2 2
c config set hash-max-listpack-entries 2
c hset bighash a 1 b 2 c 3
c zadd smallz 1 a 2.5 b
c config set zset-max-listpack-entries 2
c zadd bigz 1 a 2 b 3 c
c xadd stream '1-1' f v
c xadd stream '2-1' f v2
c xgroup create stream g 0
c xreadgroup group g consumer count 1 streams stream '>'
c function load "#!lua name=lib
redis.register_function('f', function() return 1 end)"

redis-cli -p "$port" -n 1 rpush data_queue in-db-1 >/dev/null
c save && cp "$dir/dump.rdb" types-7.0.rdb
echo ok
