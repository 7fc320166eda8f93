#!/usr/bin/env bash
# Provisions FerretDB v1.24.2 (SQLite backend) into a project-local tools folder, once.
# Usage: scripts/provision-ferretdb.sh [binary-path]   (default .tools/bin/ferretdb)
set -euo pipefail

FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB
BINARY=${1:-.tools/bin/ferretdb}
BIN_DIR=$(cd "$(dirname "$BINARY")" 2>/dev/null && pwd || { mkdir -p "$(dirname "$BINARY")" && cd "$(dirname "$BINARY")" && pwd; })
BINARY="$BIN_DIR/$(basename "$BINARY")"

# Not `grep -q`: it exits at the first match, FerretDB may die of SIGPIPE writing the rest, and
# pipefail would then call a good binary broken (seen on a loaded machine).
works() { [ -x "$BINARY" ] && "$BINARY" --version 2>/dev/null | grep "version: $FERRETDB_VERSION" >/dev/null; }

if works; then exit 0; fi

# Go is often installed outside PATH (/usr/local/go/bin on Debian images).
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
FerretDB (the embedded database) is not provisioned and Go is not installed, so it cannot be built.
Either install Go >= 1.24 (the Go module proxy must be reachable) and run 'make run' again,
or point the service at a MongoDB you run yourself: MONGO_URI=mongodb://host:27017,
or start everything with 'docker compose up' (MongoDB 7 included).
MSG
  exit 3
fi

# Serialise concurrent provisioning (parallel test workers, two terminals).
exec 9>"$BIN_DIR/.provision.lock"
flock 9
if works; then exit 0; fi

echo "==> Building the embedded database (FerretDB $FERRETDB_VERSION) with Go into $BIN_DIR: once, 1-2 minutes" >&2
# Go compiles silently for a long while: a heartbeat says it is still working.
( while sleep 15; do echo "  ... still building FerretDB (${SECONDS}s)" >&2; done ) &
heartbeat=$!
work_dir=$(mktemp -d)
trap 'kill "$heartbeat" 2>/dev/null || :; chmod -R u+w "$work_dir"; rm -rf "$work_dir"' EXIT
GOBIN="$BIN_DIR" go install "$FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION"

if ! works; then
  # 'go install' builds without build/version/version.txt, and that binary panics at start-up
  # ("Invalid build/version/version.txt file content"). Build the same module source again with the
  # version file the panic asks for. See docs/decisions/0001-embedded-ferretdb.md.
  echo "go install produced a binary without version data; rebuilding with build/version/version.txt" >&2
  src_dir=$(go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp -R "$src_dir/." "$work_dir/"
  chmod -R u+w "$work_dir"
  echo "$FERRETDB_VERSION" > "$work_dir/build/version/version.txt"
  (cd "$work_dir" && go build -buildvcs=false -o "$BINARY" ./cmd/ferretdb)
fi

works || { echo "FerretDB build finished but '$BINARY --version' does not report $FERRETDB_VERSION" >&2; exit 4; }
echo "FerretDB ready: $BINARY (${SECONDS}s)" >&2
