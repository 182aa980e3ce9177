#!/usr/bin/env bash
# Aegis ops entrypoint: the one script every Aegis Job runs on the node it is pinned to.
#
#   entrypoint.sh reboot | shutdown | healthcheck | repair
#   entrypoint.sh remedy <DropCache|RestartKubelet|RestartFabricmanager|EnableGpuPersistence|ConfigPeerMem|BreakDeadlock>
#   entrypoint.sh diagnose <Type> [id]
#
# It runs in a privileged, host-PID container (deploy/jobs/*.yaml). Host commands run in the
# host's namespaces through `nsenter -t 1`, so they use the host's own binaries (nvidia-smi,
# systemctl, GPFS tools); nothing site-specific is assumed. Every argument is checked again
# against the patterns of src/jobs/params.ts, values are only ever passed as separate arguments,
# and nothing is eval'd. Rejected input is never echoed raw (it could forge protocol lines).
#
# Exit codes: 0 ok; 64 usage error; healthcheck: 21 row-remap failure, 22 aggregate SRAM
# uncorrectable, 23 GPU check failed, 24 NVLink error; 1 any other failure.
# Diagnose prints records of three kinds of line: `hint: …`, `cmd: …`, then one or more
# `result: …`; logs go to stderr.
#
# Environment (set by the Job templates; the defaults are the production values):
#   AEGIS_JOB_NAME      name of the Job (owner of the reboot lock)
#   AEGIS_STATE_DIR     host directory for locks (hostPath-mounted), default /var/lib/aegis
#   AEGIS_GPFS_BIN      GPFS command directory on the host, default /usr/lpp/mmfs/bin
#   AEGIS_BOOT_ID_FILE  kernel boot id, default /proc/sys/kernel/random/boot_id
set -Eeuo pipefail

readonly STATE_DIR="${AEGIS_STATE_DIR:-/var/lib/aegis}"
readonly GPFS_BIN="${AEGIS_GPFS_BIN:-/usr/lpp/mmfs/bin}"
readonly BOOT_ID_FILE="${AEGIS_BOOT_ID_FILE:-/proc/sys/kernel/random/boot_id}"
readonly JOB_NAME="${AEGIS_JOB_NAME:-manual}"

readonly EX_USAGE=64
readonly EX_ROW_REMAP=21
readonly EX_SRAM=22
readonly EX_GPU_CHECK=23
readonly EX_NVLINK=24
readonly SRAM_UNCORRECTABLE_MAX=4
readonly REBOOT_WAIT_SECONDS=300

readonly ID_RE='^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$'
readonly TYPE_RE='^[A-Za-z][A-Za-z0-9]{0,63}$'
readonly JOB_RE='^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
readonly ACTION_RE='^(DropCache|RestartKubelet|RestartFabricmanager|EnableGpuPersistence|ConfigPeerMem|BreakDeadlock)$'
readonly GPFS_NODE_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$'

trap 'log "unexpected failure (status $?) at line $LINENO"; exit 1' ERR

log() { printf '%s aegis-ops: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# Usage errors show the offending value %q-quoted, so it can never start a protocol line.
usage() {
  log "usage error: $1${2+ $(printf '%q' "$2")}"
  exit "$EX_USAGE"
}

# Runs a command on the host: mount, UTS, IPC, network and PID namespaces of PID 1.
host() { nsenter -t 1 -m -u -i -n -p -- "$@"; }

# shellcheck disable=SC2016 # $1 is expanded by the host's sh, on purpose
host_has() { host sh -c 'command -v "$1"' sh "$1" >/dev/null 2>&1; }

gpfs_installed() { host test -x "$GPFS_BIN/mmgetstate"; }

# GPFS state of this node (active, down, arbitrating, …) from `mmgetstate -Y`.
gpfs_state() { host "$GPFS_BIN/mmgetstate" -Y | awk -F: '$3 != "HEADER" { print $9; exit }'; }

gpfs_local_node() { host "$GPFS_BIN/mmgetstate" -Y | awk -F: '$3 != "HEADER" { print $7; exit }'; }

# Unmounts GPFS before a reboot or power-off when it is installed. Never fatal: a node without
# GPFS, or a GPFS that will not stop, must still reboot (the original failed here under set -e).
stop_gpfs() {
  if gpfs_installed; then
    log "stopping GPFS"
    host "$GPFS_BIN/mmshutdown" || log "mmshutdown failed; continuing"
  fi
}

current_boot_id() { cat "$BOOT_ID_FILE"; }

# --- reboot -------------------------------------------------------------------------------
# The lock lives on the host (hostPath /var/lib/aegis) and records the Job and the boot id.
# First pod: write the lock, reboot. The reboot kills the pod; when the node is back, the Job's
# retry pod finds its own lock with a different boot id, removes it and exits 0, which completes
# the Job. A lock left by another Job is stale and is replaced.
cmd_reboot() {
  local lock="$STATE_DIR/reboot.lock" boot_id lock_job='' lock_boot='' key value
  boot_id="$(current_boot_id)"
  mkdir -p "$STATE_DIR"
  if [[ -f $lock ]]; then
    while IFS='=' read -r key value; do
      case $key in
        job) lock_job=$value ;;
        boot_id) lock_boot=$value ;;
      esac
    done <"$lock"
    if [[ $lock_job == "$JOB_NAME" && -n $lock_boot && $lock_boot != "$boot_id" ]]; then
      rm -f "$lock"
      log "node is back after the reboot requested by $JOB_NAME"
      exit 0
    fi
    log "replacing a lock that does not prove a reboot by this job"
    rm -f "$lock"
  fi
  printf 'job=%s\nboot_id=%s\n' "$JOB_NAME" "$boot_id" >"$lock.tmp"
  mv "$lock.tmp" "$lock"
  host sync
  stop_gpfs
  host systemctl enable kubelet || log "could not enable kubelet; continuing"
  if host systemctl is-active --quiet containerd; then
    host systemctl enable containerd || log "could not enable containerd; continuing"
  fi
  log "rebooting"
  host systemctl reboot || host reboot
  sleep "$REBOOT_WAIT_SECONDS"
  log "the node did not reboot within ${REBOOT_WAIT_SECONDS}s"
  exit 1
}

# --- shutdown -----------------------------------------------------------------------------
cmd_shutdown() {
  host sync
  stop_gpfs
  log "powering off"
  host systemctl poweroff || host shutdown -h now
  sleep "$REBOOT_WAIT_SECONDS"
  log "the node did not power off within ${REBOOT_WAIT_SECONDS}s"
  exit 1
}

# --- healthcheck --------------------------------------------------------------------------
# NVIDIA GPUs the PCI bus shows (VGA or 3D controller class); -1 when lspci is not installed.
pci_gpu_count() {
  if ! host_has lspci; then
    echo -1
    return
  fi
  host lspci -n -d 10de: | awk '$2 ~ /^030[02]/ { n++ } END { print n + 0 }'
}

check_gpus() {
  local expected=$1 listed count
  if ! listed="$(host timeout 300 nvidia-smi -L 2>&1)"; then
    log "nvidia-smi -L failed: ${listed//$'\n'/ | }"
    return 1
  fi
  count="$(grep -c '^GPU ' <<<"$listed" || true)"
  log "nvidia-smi lists $count GPU(s); the PCI bus shows $expected"
  if ((count == 0 || (expected > 0 && count < expected))); then
    return 1
  fi
}

check_row_remap() {
  local out
  out="$(host nvidia-smi --query-remapped-rows=gpu_bus_id,remapped_rows.failure \
    --format=csv,noheader 2>/dev/null)" || return 0 # not supported on this GPU generation
  if awk -F', *' 'tolower($2) ~ /^(yes|1|true)$/ { bad = 1; print "row remapping failed on " $1 > "/dev/stderr" }
      END { exit bad }' <<<"$out"; then
    return 0
  fi
  return 1
}

check_sram() {
  local out
  out="$(host nvidia-smi --query-gpu=index,ecc.errors.uncorrected.aggregate.sram \
    --format=csv,noheader,nounits 2>/dev/null)" || return 0
  awk -F', *' -v max="$SRAM_UNCORRECTABLE_MAX" '$2 ~ /^[0-9]+$/ && $2 + 0 > max {
      bad = 1; print "GPU " $1 ": " $2 " uncorrectable SRAM errors" > "/dev/stderr" }
      END { exit bad }' <<<"$out"
}

check_nvlink() {
  local out
  out="$(host nvidia-smi nvlink --status 2>/dev/null)" || return 0 # no NVLink on this node
  if grep -qi 'inactive' <<<"$out"; then
    log "inactive NVLink: $(grep -i 'inactive' <<<"$out" | head -n 4 | tr '\n' ' ')"
    return 1
  fi
}

cmd_healthcheck() {
  local expected
  expected="$(pci_gpu_count)"
  if ((expected == 0)) || { ((expected < 0)) && ! host_has nvidia-smi; }; then
    log "no NVIDIA GPU on this node; healthy"
    exit 0
  fi
  if ! host_has nvidia-smi; then
    log "the PCI bus shows $expected NVIDIA GPU(s) but nvidia-smi is missing"
    exit "$EX_GPU_CHECK"
  fi
  check_gpus "$expected" || exit "$EX_GPU_CHECK"
  check_row_remap || exit "$EX_ROW_REMAP"
  check_sram || exit "$EX_SRAM"
  check_nvlink || exit "$EX_NVLINK"
  log "healthy"
  exit 0
}

# --- remedy -------------------------------------------------------------------------------
cmd_remedy() {
  local action=$1 node
  [[ $action =~ $ACTION_RE ]] || usage "unknown remedy action" "$action"
  log "remedy $action"
  case $action in
    DropCache)
      host free -g
      host sync
      echo 3 | host tee /proc/sys/vm/drop_caches >/dev/null
      host free -g
      ;;
    RestartKubelet)
      if host systemctl is-active --quiet containerd; then host systemctl restart containerd; fi
      host systemctl restart kubelet
      ;;
    RestartFabricmanager)
      host systemctl restart nvidia-fabricmanager
      ;;
    EnableGpuPersistence)
      if host systemctl cat nvidia-persistenced >/dev/null 2>&1; then
        host systemctl enable --now nvidia-persistenced
      else
        host nvidia-smi -pm 1
      fi
      ;;
    ConfigPeerMem)
      host modprobe nvidia-peermem
      if ! host grep -qsx 'nvidia_peermem' /etc/modules-load.d/nvidia-peermem.conf; then
        echo nvidia_peermem | host tee /etc/modules-load.d/nvidia-peermem.conf >/dev/null
      fi
      ;;
    BreakDeadlock)
      gpfs_installed || { log "GPFS is not installed"; exit 1; }
      host "$GPFS_BIN/mmdiag" --deadlock || true
      node="$(gpfs_local_node)"
      [[ $node =~ $GPFS_NODE_RE ]] || { log "cannot read the local GPFS node name"; exit 1; }
      echo yes | host "$GPFS_BIN/mmcommon" breakDeadlock -N "$node"
      ;;
  esac
  log "remedy $action done"
}

# --- repair (GPFS) ------------------------------------------------------------------------
cmd_repair() {
  local state i
  if ! gpfs_installed; then
    log "GPFS is not installed; nothing to repair"
    exit 0
  fi
  state="$(gpfs_state)"
  if [[ $state != active ]]; then
    log "GPFS state is '${state:-unknown}'; starting it"
    host "$GPFS_BIN/mmstartup"
    for ((i = 0; i < 30; i++)); do
      state="$(gpfs_state)"
      [[ $state == active ]] && break
      sleep 10
    done
    [[ $state == active ]] || { log "GPFS did not become active"; exit 1; }
  fi
  host "$GPFS_BIN/mmmount" all
  log "GPFS active and mounted"
}

# --- diagnose -----------------------------------------------------------------------------
# One record: the hint, the command as shown to humans, then every output line as `result:`.
emit() {
  local line
  printf 'hint: %s\n' "$1"
  printf 'cmd: %s\n' "$2"
  if [[ -z $3 ]]; then
    printf 'result: (no output)\n'
    return
  fi
  while IFS= read -r line; do printf 'result: %s\n' "$line"; done <<<"$3"
}

# probe <hint> <shown command> <argv…>: runs argv, never fails the script.
probe() {
  local hint=$1 shown=$2 out status=0
  shift 2
  out="$("$@" 2>&1)" || status=$?
  ((status == 0)) || out+=$'\n'"(exit status $status)"
  emit "$hint" "$shown" "$out"
}

smi() { host nvidia-smi "$@"; }
xid_lines() { host dmesg -T | grep -F 'Xid' | { if [[ -n $1 ]]; then grep -F -- "$1"; else cat; fi; } || true; }
sensors() { host ipmimonitoring --output-sensor-state --ignore-not-available-sensors | grep -i -- "$1" | grep -v 'Nominal' || true; }
link_status() { host lspci -s "$1" -vvv | grep -E 'LnkCap:|LnkSta:' || true; }
ibgda() { smi -q | grep -A 5 'IBGDA' || true; }
gpu_counts() {
  printf 'nvidia-smi: %s GPU(s)\n' "$(smi -L 2>/dev/null | grep -c '^GPU ' || true)"
  printf 'lspci: %s NVIDIA GPU(s)\n' "$(pci_gpu_count)"
}

cmd_diagnose() {
  local type=$1 id=${2:-} gpu=()
  [[ $type =~ $TYPE_RE ]] || usage "invalid diagnose type" "$type"
  if [[ -n $id ]]; then
    [[ $id =~ $ID_RE ]] || usage "invalid diagnose id" "$id"
    gpu=(-i "$id")
  fi
  case $type in
    BaseBoardCriticalIssue)
      probe "BMC sensors not Nominal${id:+ ($id)}" "ipmimonitoring --output-sensor-state | grep -i ${id:-.} | grep -v Nominal" sensors "${id:-.}" ;;
    CpuUnhealthy)
      probe "processor sensors not Nominal" "ipmimonitoring --output-sensor-state | grep -i processor | grep -v Nominal" sensors processor ;;
    MemoryUnhealthy)
      probe "memory sensors not Nominal" "ipmimonitoring --output-sensor-state | grep -i memory | grep -v Nominal" sensors memory ;;
    NetworkLinkDown)
      probe "link state of every interface" "ip -br link" host ip -br link
      probe "bond0 members" "cat /proc/net/bonding/bond0" host cat /proc/net/bonding/bond0 ;;
    GpfsIBNotConfig)
      probe "GPFS network health" "mmhealth node show network" host "$GPFS_BIN/mmhealth" node show network ;;
    IBDown)
      probe "InfiniBand port states (expect ACTIVE)" "ibstatus" host ibstatus ;;
    IBPcieDowngraded | GpuPcieDowngraded)
      if [[ -z $id ]]; then
        emit "a PCI address is needed to read the link state" "-" ""
      else
        probe "PCIe link capability vs status of $id" "lspci -s $id -vvv | grep -E 'LnkCap|LnkSta'" link_status "$id"
      fi ;;
    GpuRowRemappingFailure | GpuRowRemappingPending)
      probe "row remapper state" "nvidia-smi -q -d ROW_REMAPPER ${gpu[*]}" smi -q -d ROW_REMAPPER "${gpu[@]}" ;;
    GpuAggSramUncorrectable)
      probe "ECC counters (aggregate SRAM uncorrectable > $SRAM_UNCORRECTABLE_MAX fails)" "nvidia-smi -q -d ECC ${gpu[*]}" smi -q -d ECC "${gpu[@]}" ;;
    GpuDown)
      probe "GPUs seen by the driver vs the PCI bus" "nvidia-smi -L; lspci -n -d 10de:" gpu_counts ;;
    GpuCheckFailed)
      probe "driver view of the GPUs" "nvidia-smi ${gpu[*]}" smi "${gpu[@]}" ;;
    Xid*)
      local code=${type#Xid}
      probe "kernel Xid events${code:+ (Xid $code)}" "dmesg -T | grep Xid${code:+ | grep $code}" xid_lines "$code" ;;
    NvidiaFabricManagerNotActive)
      probe "fabric manager service" "systemctl status nvidia-fabricmanager" host systemctl status nvidia-fabricmanager --no-pager ;;
    GpuPersistenceModeNotEnabled)
      probe "persistence mode per GPU" "nvidia-smi --query-gpu=index,persistence_mode --format=csv" smi --query-gpu=index,persistence_mode --format=csv ;;
    GpuNvlinkInactive)
      probe "NVLink status per link" "nvidia-smi nvlink -s ${gpu[*]}" smi nvlink -s "${gpu[@]}" ;;
    GpuNvlinkError)
      probe "NVLink error counters" "nvidia-smi nvlink -e ${gpu[*]}" smi nvlink -e "${gpu[@]}" ;;
    GpuP2PNotSupported)
      probe "GPU peer-to-peer read capability" "nvidia-smi topo -p2p r" smi topo -p2p r ;;
    GPUIbgdaNotEnabled | GpuIbgdaNotEnabled)
      probe "IBGDA settings" "nvidia-smi -q | grep -A 5 IBGDA" ibgda ;;
    *)
      emit "no diagnosis recipe for $type" "-" "" ;;
  esac
}

main() {
  (($# >= 1)) || usage "no action given"
  local action=$1
  shift
  [[ $JOB_NAME =~ $JOB_RE ]] || usage "invalid AEGIS_JOB_NAME" "$JOB_NAME"
  case $action in
    reboot | shutdown | healthcheck | repair)
      (($# == 0)) || usage "$action takes no arguments"
      "cmd_$action"
      ;;
    remedy)
      (($# == 1)) || usage "remedy takes exactly one action"
      cmd_remedy "$1"
      ;;
    diagnose)
      (($# == 1 || $# == 2)) || usage "diagnose takes a type and an optional id"
      cmd_diagnose "$@"
      ;;
    *) usage "unknown action" "$action" ;;
  esac
}

main "$@"
