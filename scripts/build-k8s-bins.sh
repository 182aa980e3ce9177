#!/usr/bin/env bash
# Builds the real Kubernetes test binaries (kube-apiserver, kube-controller-manager, etcd, kwok)
# from the Go modules served by the Go module proxy, once, into a cache outside the checkout.
# Re-running is cheap: a binary already in the cache is reused.
#
#   AEGIS_K8S_VERSION  k8s.io/kubernetes version (default 1.37.2; test/helpers/k8s-harness.ts reads the same)
#   AEGIS_KWOK_VERSION sigs.k8s.io/kwok version  (default 0.8.0)
#   AEGIS_CACHE_DIR    cache root (default ~/.cache/aegis)
set -euo pipefail

V="${AEGIS_K8S_VERSION:-1.37.2}"
KWOK_V="${AEGIS_KWOK_VERSION:-0.8.0}"
CACHE="${AEGIS_CACHE_DIR:-$HOME/.cache/aegis}"
OUT="$CACHE/k8s/v$V"
WORK="$CACHE/k8s/build-v$V"

need() { command -v "$1" >/dev/null 2>&1 || { echo "build-k8s-bins: '$1' is required but not on PATH" >&2; exit 1; }; }
need go

if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ] && [ -x "$OUT/etcd" ] && [ -x "$OUT/kwok" ]; then
  echo "build-k8s-bins: reusing $OUT"
  exit 0
fi
mkdir -p "$OUT" "$WORK"
cd "$WORK"

if [ ! -f go.mod ]; then
  go mod init example.invalid/aegis-k8s-bins >/dev/null 2>&1
  MOD=$(go mod download -json "k8s.io/kubernetes@v$V" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$MOD" ] || { echo "build-k8s-bins: could not fetch k8s.io/kubernetes@v$V from the Go module proxy" >&2; exit 1; }
  go mod edit -require="k8s.io/kubernetes@v$V"
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$MOD"); do
    go mod edit -replace="$m=$m@v0.${V#1.}"
  done
  ETCDV=$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$MOD")
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$V" "k8s.io/kubernetes/cmd/kube-controller-manager@v$V" "go.etcd.io/etcd/server/v3@$ETCDV"
  go mod tidy
fi

MINOR=$(echo "$V" | cut -d. -f2)
LDF="-s -w -X k8s.io/component-base/version.gitVersion=v$V -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR"
[ -x "$OUT/etcd" ] || go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
[ -x "$OUT/kube-apiserver" ] || go build -trimpath -ldflags "$LDF" -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
[ -x "$OUT/kube-controller-manager" ] || go build -trimpath -ldflags "$LDF" -o "$OUT/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
[ -x "$OUT/kwok" ] || GOBIN="$OUT" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_V"
echo "build-k8s-bins: built into $OUT"
