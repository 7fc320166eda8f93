#!/usr/bin/env bash
# Provisions gofakes3 (an S3-compatible server, used only by the S3 integration tests) into the
# project-local tools folder, once. Usage: scripts/provision-gofakes3.sh [binary-path]
set -euo pipefail

GOFAKES3_VERSION=v1.2.0
BINARY=${1:-.tools/bin/gofakes3}
mkdir -p "$(dirname "$BINARY")"
BIN_DIR=$(cd "$(dirname "$BINARY")" && pwd)
BINARY="$BIN_DIR/$(basename "$BINARY")"

if [ -x "$BINARY" ]; then exit 0; fi
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "gofakes3 (S3 test server) is not provisioned and Go is not installed; the S3 tests need Go >= 1.24." >&2
  exit 3
fi

# Serialise concurrent provisioning (parallel test workers).
exec 9>"$BIN_DIR/.provision-gofakes3.lock"
flock 9
if [ -x "$BINARY" ]; then exit 0; fi
echo "Provisioning gofakes3 $GOFAKES3_VERSION into $BIN_DIR (once)..." >&2
GOBIN="$BIN_DIR" go install "github.com/johannesboyne/gofakes3/cmd/gofakes3@$GOFAKES3_VERSION"
