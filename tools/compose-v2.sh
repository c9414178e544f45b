#!/usr/bin/env bash
# Builds Docker Compose v2 from the Go module proxy (no registry, no release download) into
# the checkout's cache, so that the compose tests run under v2 as well as docker-compose 1.29.
# Prints the binary's path on stdout; skipped when the binary of that version is there.
#
# Usage: tools/compose-v2.sh
# Env:   COMPOSE_V2_VERSION  default v2.40.3
#        SLUICE_CACHE_DIR    default <repo>/.cache (gitignored)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
version=${COMPOSE_V2_VERSION:-v2.40.3}
cache=${SLUICE_CACHE_DIR:-$repo/.cache}
bin=$cache/bin/docker-compose-$version

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi
printf '>> building Docker Compose %s from the Go module proxy (a few minutes, once)\n' "$version" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache/bin"
(
	cd "$work"
	# A scratch module: `go install` refuses compose's go.mod (it has exclude directives).
	go mod init sluice.local/compose-v2 >/dev/null 2>&1
	go get "github.com/docker/compose/v2/cmd@$version" >/dev/null 2>&1 ||
		{ echo "go get github.com/docker/compose/v2/cmd@$version failed" >&2; exit 1; }
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
		-o "$bin.tmp" github.com/docker/compose/v2/cmd
)
mv "$bin.tmp" "$bin"
echo "$bin"
