#!/usr/bin/env bash
# The one test command (`npm test`): sets up what the tiers need, then runs every tier in one
# node:test run (its closing summary is what CI reads). A tier that cannot run fails the run
# with the reason; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

say "real Prometheus and Alertmanager (Debian prometheus + promtool, prometheus-alertmanager), a real BMC (openipmi's ipmi_sim, ipmitool), headless Chromium for the console (Debian chromium)"
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1 || ! command -v ipmi_sim >/dev/null 2>&1 || ! command -v ipmitool >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager openipmi ipmitool chromium >/dev/null) \
      || { echo "test-all: installing Debian 'prometheus' / 'prometheus-alertmanager' / 'openipmi' / 'ipmitool' / 'chromium' failed" >&2; exit 1; }
  else
    echo "test-all: prometheus/promtool/prometheus-alertmanager/ipmi_sim/ipmitool/chromium missing; install Debian packages 'prometheus', 'prometheus-alertmanager', 'openipmi', 'ipmitool' and 'chromium' (apt-get install prometheus prometheus-alertmanager openipmi ipmitool chromium)" >&2
    exit 1
  fi
fi
prometheus --version 2>&1 | head -1

say "real Kubernetes binaries (built from Go modules, cached outside the checkout)"
bash scripts/build-k8s-bins.sh
bash scripts/build-vm-bins.sh

say "typecheck, lint, format"
npx tsc -p tsconfig.json
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check . ; exit 1; }

say "all test tiers"
# Longest-first: the tiers whose files run for minutes start at once, and the many short unit
# files fill the two workers at the end (sorted by name, the slowest tier started last and ran alone).
order() {
  local tier
  for tier in test/victoriametrics test/scenarios test/prometheus test/k8s test/bmc test/safety; do
    printf '%s\n' "$@" | grep "^$tier/" || true
  done
  printf '%s\n' "$@" | grep -Ev '^test/(victoriametrics|scenarios|prometheus|k8s|bmc|safety)/' | grep '^test/' || true
  printf '%s\n' "$@" | grep -v '^test/' || true
}
mapfile -t all < <(find src test -name '*.test.ts' | sort)
mapfile -t files < <(order "${all[@]}")
[ "${#files[@]}" -eq "${#all[@]}" ] || { echo "test-all: ordering lost test files" >&2; exit 1; }
exec node --import tsx --test --test-concurrency=2 "${files[@]}"
