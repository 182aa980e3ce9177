#!/usr/bin/env bash
# Builds the real VictoriaMetrics test binary from the VictoriaMetrics Go module served by the Go
# module proxy, once, into a cache outside the checkout. Re-running is cheap: a binary already in
# the cache is reused.
#
# The module proxy serves the single-node releases (vX.Y.Z) but not the cluster ones
# (vX.Y.Z-cluster): in the single-node module app/vminsert, app/vmselect and app/vmstorage are
# library packages linked into one program, app/victoria-metrics, which runs the same MetricsQL
# engine (app/vmselect/promql) and the same storage as the cluster's vmselect and vmstorage.
# So this builds `victoria-metrics`; see docs/prometheus.md ("Backends").
#
#   AEGIS_VM_VERSION   github.com/VictoriaMetrics/VictoriaMetrics version (default 1.151.0)
#   AEGIS_CACHE_DIR    cache root (default ~/.cache/aegis)
set -euo pipefail

V="${AEGIS_VM_VERSION:-1.151.0}"
CACHE="${AEGIS_CACHE_DIR:-$HOME/.cache/aegis}"
OUT="$CACHE/vm/v$V"
WORK="$CACHE/vm/build-v$V"
MODULE=github.com/VictoriaMetrics/VictoriaMetrics

need() { command -v "$1" >/dev/null 2>&1 || { echo "build-vm-bins: '$1' is required but not on PATH" >&2; exit 1; }; }
need go

if [ -x "$OUT/victoria-metrics" ]; then
  echo "build-vm-bins: reusing $OUT"
  exit 0
fi
mkdir -p "$OUT" "$WORK"
cd "$WORK"

if [ ! -f tools.go ]; then
  rm -f go.mod go.sum
  go mod init example.invalid/aegis-vm-bins >/dev/null 2>&1
  go mod download -json "$MODULE@v$V" >/dev/null \
    || { echo "build-vm-bins: could not fetch $MODULE@v$V from the Go module proxy" >&2; exit 1; }
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
)
GO
  go get "$MODULE/app/victoria-metrics@v$V"
  go mod tidy
fi

LDF="-s -w -X $MODULE/lib/buildinfo.Version=victoria-metrics-v$V"
go build -trimpath -ldflags "$LDF" -o "$OUT/victoria-metrics.tmp" "$MODULE/app/victoria-metrics"
mv "$OUT/victoria-metrics.tmp" "$OUT/victoria-metrics"
echo "build-vm-bins: built into $OUT"
