#!/usr/bin/env bash
# Provisions kustomize (renders k8s/ for the manifest tests; `kubectl apply -k` embeds the same
# engine) into the project-local tools folder, once. Usage: scripts/provision-kustomize.sh [binary-path]
# v5.8.1 is the newest release that builds with Go 1.24 (v5.8.2 needs 1.26, v5.8.3 needs 1.27).
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.1
BINARY=${1:-.tools/bin/kustomize}
mkdir -p "$(dirname "$BINARY")"
BIN_DIR=$(cd "$(dirname "$BINARY")" && pwd)
BINARY="$BIN_DIR/$(basename "$BINARY")"

works() { [ -x "$BINARY" ] && [ "$("$BINARY" version 2>/dev/null)" = "$KUSTOMIZE_VERSION" ]; }

if works; then exit 0; fi
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "kustomize (used by the manifest tests) is not provisioned and Go is not installed; install Go >= 1.24." >&2
  exit 3
fi

# Serialise concurrent provisioning (parallel test workers).
exec 9>"$BIN_DIR/.provision-kustomize.lock"
flock 9
if works; then exit 0; fi
echo "==> Building kustomize $KUSTOMIZE_VERSION (for the manifest tests) with Go into $BIN_DIR: once" >&2
GOBIN="$BIN_DIR" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
works || { echo "kustomize build finished but '$BINARY version' does not report $KUSTOMIZE_VERSION" >&2; exit 4; }
