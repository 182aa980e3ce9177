#!/usr/bin/env bash
# Aegis ops entrypoint: the one script every Aegis Job runs on the node it is pinned to.
#
#   entrypoint.sh reboot | shutdown | healthcheck | repair
#   entrypoint.sh remedy <DropCache|RestartKubelet|RestartFabricmanager|EnableGpuPersistence|ConfigPeerMem|BreakDeadlock>
#   entrypoint.sh diagnose <Type> [id]
#   entrypoint.sh validate <dcgm level 0-4> <nccl gpus: 0|all|N> <ib device: none|auto|name>
#
# It runs in a privileged, host-PID container (deploy/jobs/*.yaml). Host commands run in the
# host's namespaces through `nsenter -t 1`, so they use the host's own binaries (systemctl, GPFS
# tools) and see the host's mounts, including a GPU Operator driver root; nothing site-specific is
# assumed. Every host command has a deadline (AEGIS_CMD_TIMEOUT). Every argument is checked again
# against the patterns of src/jobs/params.ts, values are only ever passed as separate arguments,
# and nothing is eval'd. Rejected input is never echoed raw (it could forge protocol lines).
#
# nvidia-smi is looked up in the driver root: the host itself (a driver installed on the host),
# or the GPU Operator's driver container, whose root the operator mounts on the host at
# /run/nvidia/driver and names in /run/nvidia/validations/driver-ready (NVIDIA_DRIVER_ROOT=…).
# There it runs as `chroot <root> nvidia-smi`, so it uses the container's own libraries.
#
# Exit codes: 0 ok; 64 usage error; healthcheck: 21 row-remap failure, 22 aggregate SRAM
# uncorrectable, 23 GPU check failed (including nvidia-smi not answering in time), 24 NVLink
# error, 25 cannot check (a tool the check needs is missing: inconclusive, never a fault);
# 1 any other failure.
# Diagnose prints records of three kinds of line: `hint: …`, `cmd: …`, then one or more
# `result: …` (at most MAX_RESULT_LINES per record); logs go to stderr.
#
# Environment (set by the Job templates; the defaults are the production values):
#   AEGIS_JOB_NAME             name of the Job (owner of the reboot lock)
#   AEGIS_STATE_DIR            host directory for locks (hostPath-mounted), default /var/lib/aegis
#   AEGIS_GPFS_BIN             GPFS command directory on the host, default /usr/lpp/mmfs/bin
#   AEGIS_BOOT_ID_FILE         kernel boot id, default /proc/sys/kernel/random/boot_id
#   AEGIS_CMD_TIMEOUT          seconds a host command may take, default 120
#   AEGIS_SYS_DIR              sysfs, read for the PCI devices, default /sys
#   AEGIS_DRIVER_ROOT          force the NVIDIA driver root on the host ("/" = host install)
#   AEGIS_OPERATOR_DRIVER_ROOT GPU Operator driver root on the host, default /run/nvidia/driver
#   AEGIS_DRIVER_READY_FILE    GPU Operator validator status file on the host,
#                              default /run/nvidia/validations/driver-ready
set -Eeuo pipefail

readonly STATE_DIR="${AEGIS_STATE_DIR:-/var/lib/aegis}"
readonly GPFS_BIN="${AEGIS_GPFS_BIN:-/usr/lpp/mmfs/bin}"
readonly BOOT_ID_FILE="${AEGIS_BOOT_ID_FILE:-/proc/sys/kernel/random/boot_id}"
readonly JOB_NAME="${AEGIS_JOB_NAME:-manual}"
readonly CMD_TIMEOUT="${AEGIS_CMD_TIMEOUT:-120}"
readonly SYS_DIR="${AEGIS_SYS_DIR:-/sys}"
readonly DRIVER_ROOT_SETTING="${AEGIS_DRIVER_ROOT:-}"
readonly OPERATOR_DRIVER_ROOT="${AEGIS_OPERATOR_DRIVER_ROOT:-/run/nvidia/driver}"
readonly DRIVER_READY_FILE="${AEGIS_DRIVER_READY_FILE:-/run/nvidia/validations/driver-ready}"

readonly EX_USAGE=64
readonly EX_ROW_REMAP=21
readonly EX_SRAM=22
readonly EX_GPU_CHECK=23
readonly EX_NVLINK=24
readonly EX_CANNOT_CHECK=25
readonly SRAM_UNCORRECTABLE_MAX=4
readonly REBOOT_WAIT_SECONDS=300
readonly MAX_RESULT_LINES=40

readonly ID_RE='^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$'
readonly TYPE_RE='^[A-Za-z][A-Za-z0-9]{0,63}$'
readonly JOB_RE='^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
readonly ACTION_RE='^(DropCache|RestartKubelet|RestartFabricmanager|EnableGpuPersistence|ConfigPeerMem|BreakDeadlock)$'
readonly GPFS_NODE_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$'
readonly TIMEOUT_RE='^[1-9][0-9]{0,4}$'
# An absolute host path: no empty, `.` or `..` components, no shell metacharacters.
readonly ROOT_RE='^(/|(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+)$'
# A device or interface name used inside a host path (/dev/<x>, /sys/class/net/<x>): no `/`.
readonly DEV_RE='^[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}$'
readonly GPU_INDEX_RE='^[0-9]{1,3}$'
readonly GPU_MASK_RE='^[01]{2,16}$'
readonly PCI_BDF_RE='^([0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$'
readonly VALIDATE_LEVEL_RE='^[0-4]$'
readonly VALIDATE_GPUS_RE='^(0|all|[1-9]|[1-5][0-9]|6[0-4])$'
readonly VALIDATE_IB_RE='^(none|auto|[A-Za-z][A-Za-z0-9_]{0,31})$'
# Validation: how long one test may take (DCGM level 3 takes ~30 min, level 4 over an hour).
readonly VALIDATE_TIMEOUT="${AEGIS_VALIDATE_TIMEOUT:-5400}"
readonly NCCL_TEST_ARGS=(-b 512M -e 4G -f 2)

trap 'log "unexpected failure (status $?) at line $LINENO"; exit 1' ERR

log() { printf '%s aegis-ops: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# Usage errors show the offending value %q-quoted, so it can never start a protocol line.
usage() {
  log "usage error: $1${2+ $(printf '%q' "$2")}"
  exit "$EX_USAGE"
}

# Set by main once AEGIS_CMD_TIMEOUT is validated: the grace between TERM and KILL (in proportion
# to the deadline: a test runs with a 1-second one), and the deadline of GPFS start, stop and
# mount, which take longer than other host commands.
KILL_GRACE=5
GPFS_TIMEOUT=600

# The host's namespaces: mount, UTS, IPC, network and PID of PID 1.
readonly NSENTER=(nsenter -t 1 -m -u -i -n -p --)

# Runs a command on the host with the default deadline (host_t: with its own). Used where the
# output is not needed or is piped; a process stuck in the kernel can still hold these up, so
# the GPU checks use capture below instead.
host() { timeout -k "$KILL_GRACE" "$CMD_TIMEOUT" "${NSENTER[@]}" "$@"; }
host_t() {
  local seconds=$1
  shift
  timeout -k "$KILL_GRACE" "$seconds" "${NSENTER[@]}" "$@"
}

# capture <argv…>: runs argv (a command in this container; host commands are prefixed with
# NSENTER, see hostcap) with the deadline and sets OUT (stdout and stderr) and RC. RC is 124 when
# the deadline passed, even when the process cannot be killed (a GPU wedged in the kernel leaves
# nvidia-smi unkillable): the wait is bounded by read -t on the status pipe, not by the child,
# which is left behind. RC 126/127: the command could not be run (missing tool). OUT keeps what
# arrived in time. The output goes through a file in TMPDIR (an emptyDir in the Job templates).
capture() {
  local fd status='' file
  file="$(mktemp "${TMPDIR:-/tmp}/aegis-ops.XXXXXX")"
  exec {fd}< <(
    trap - ERR
    set +e
    exec 2>&1 # hold nothing of ours but the pipe, or a child left behind keeps our stderr open
    timeout -k "$KILL_GRACE" "$CMD_TIMEOUT" "$@" </dev/null >"$file" 2>&1
    printf '%d\n' "$?"
  )
  if ! read -r -t "$((CMD_TIMEOUT + KILL_GRACE + 2))" -u "$fd" status; then
    status=124 # the deadline passed (a status line that never came: the same)
  fi
  exec {fd}<&-
  [[ $status =~ ^[0-9]+$ ]] || status=1
  if ((status == 137)); then status=124; fi # killed after the grace period
  RC=$status
  OUT="$(<"$file")"
  rm -f "$file"
}

# hostcap <argv…>: capture for a host command.
hostcap() { capture "${NSENTER[@]}" "$@"; }

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
    host_t "$GPFS_TIMEOUT" "$GPFS_BIN/mmshutdown" || log "mmshutdown failed; continuing"
  fi
}

current_boot_id() { cat "$BOOT_ID_FILE"; }

# --- NVIDIA driver root ---------------------------------------------------------------------
SMI=()          # how to run nvidia-smi in the host's namespaces, once found
DRIVER_ROOT=''  # "/" for a driver installed on the host, else the driver container's root

# NVIDIA_DRIVER_ROOT from the GPU Operator validator's status file (KEY=value lines, read as
# data, never sourced). Prints nothing when the file is absent or names no usable root.
operator_ready_root() {
  local key value
  hostcap cat "$DRIVER_READY_FILE"
  ((RC == 0)) || return 0
  while IFS='=' read -r key value; do
    if [[ $key == NVIDIA_DRIVER_ROOT && $value =~ $ROOT_RE ]]; then
      printf '%s\n' "$value"
      return 0
    fi
  done <<<"$OUT"
}

# Finds nvidia-smi: the configured root, else the root the GPU Operator validator reported, the
# host, the default GPU Operator root. Sets SMI and DRIVER_ROOT; fails when there is none.
find_driver_root() {
  ((${#SMI[@]} == 0)) || return 0
  local root candidates=()
  if [[ -n $DRIVER_ROOT_SETTING ]]; then
    candidates=("$DRIVER_ROOT_SETTING")
  else
    root="$(operator_ready_root)"
    [[ -z $root ]] || candidates+=("$root")
    candidates+=(/ "$OPERATOR_DRIVER_ROOT")
  fi
  for root in "${candidates[@]}"; do
    if [[ $root == / ]]; then
      if host_has nvidia-smi; then
        SMI=(nvidia-smi)
        DRIVER_ROOT=/
        return 0
      fi
    elif host test -x "$root/usr/bin/nvidia-smi" 2>/dev/null; then
      SMI=(chroot "$root" nvidia-smi)
      DRIVER_ROOT=$root
      return 0
    fi
  done
  return 1
}

# smicap <args…>: capture of nvidia-smi in the driver root (find_driver_root must have succeeded).
smicap() { capture "${NSENTER[@]}" "${SMI[@]}" "$@"; }

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
  host sync || log "sync did not finish; continuing"
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
  host sync || log "sync did not finish; continuing"
  stop_gpfs
  log "powering off"
  host systemctl poweroff || host shutdown -h now
  sleep "$REBOOT_WAIT_SECONDS"
  log "the node did not power off within ${REBOOT_WAIT_SECONDS}s"
  exit 1
}

# --- healthcheck --------------------------------------------------------------------------
fail() {
  local code=$1
  shift
  log "$*"
  exit "$code"
}

# A tool the check needs is missing: inconclusive, never a fault (the engine must not act on it).
cannot_check() { fail "$EX_CANNOT_CHECK" "cannot check: $*"; }

# NVIDIA display (0x0300) and 3D (0x0302) controllers in sysfs, SR-IOV virtual functions left
# out; -1 when sysfs has no PCI devices. No tool needed: a privileged pod sees the host's PCI
# devices in its own /sys.
pci_gpu_count() {
  local dir="$SYS_DIR/bus/pci/devices" dev vendor class n=0
  if [[ ! -d $dir ]]; then
    echo -1
    return
  fi
  for dev in "$dir"/*; do
    [[ -r $dev/vendor && -r $dev/class && ! -e $dev/physfn ]] || continue
    vendor='' class=''
    read -r vendor <"$dev/vendor" || true
    read -r class <"$dev/class" || true
    if [[ $vendor == 0x10de && ($class == 0x0300* || $class == 0x0302*) ]]; then n=$((n + 1)); fi
  done
  echo "$n"
}

# Runs nvidia-smi for the healthcheck. A missing binary is "cannot check"; no answer in time is
# a GPU check failure (a driver that hangs nvidia-smi is the classic wedged GPU). Other non-zero
# statuses are left to the caller.
smi_check() {
  smicap "$@"
  case $RC in
    124) fail "$EX_GPU_CHECK" "nvidia-smi $* did not answer within ${CMD_TIMEOUT}s" ;;
    126 | 127) cannot_check "nvidia-smi $* could not be run (${SMI[*]}): ${OUT//$'\n'/ | }" ;;
  esac
}

check_gpus() {
  local expected=$1 count
  smi_check -L
  if ((RC != 0)); then
    fail "$EX_GPU_CHECK" "nvidia-smi -L failed (exit $RC): ${OUT//$'\n'/ | }"
  fi
  count="$(grep -c '^GPU [0-9]' <<<"$OUT" || true)"
  log "nvidia-smi lists $count GPU(s); the PCI bus shows $expected"
  if ((count == 0 || (expected > 0 && count < expected))); then
    fail "$EX_GPU_CHECK" "GPU(s) missing: nvidia-smi lists $count, the PCI bus shows $expected"
  fi
}

# One line per GPU from `nvidia-smi -q -x`, in index order: bus id, row-remap failure (Yes/No/
# N/A), aggregate uncorrectable SRAM errors (sum of every counter the driver reports), SRAM
# threshold exceeded, NVLink fabric state, product name; tab-separated. nvidia-smi writes one
# element per line, which is all this relies on. Older drivers report one
# <sram_uncorrectable>, 550 and later <sram_uncorrectable_parity> and _secded; MIG devices
# report their own counters under <mig_devices>, outside <ecc_errors>, and are not counted.
# shellcheck disable=SC2016 # an awk program
readonly GPU_TABLE_AWK='
BEGIN { n = -1 }
function value(line) { sub(/^[ \t]*<[^>]*>/, "", line); sub(/<\/.*$/, "", line); return line }
function orNA(v) { return v == "" ? "N/A" : v }
function flush() {
  if (n >= 0) print bus "\t" orNA(remap) "\t" sram "\t" orNA(threshold) "\t" orNA(fabric) "\t" name
}
/<gpu id="/ {
  flush(); n++
  bus = $0; sub(/.*<gpu id="/, "", bus); sub(/".*/, "", bus)
  remap = "N/A"; sram = 0; threshold = "N/A"; fabric = "N/A"; name = ""
  inEcc = 0; inAggregate = 0; inFabric = 0; inMig = 0
  next
}
n < 0 { next }
/<mig_devices>/ { inMig = 1 }
/<\/mig_devices>/ { inMig = 0 }
inMig { next }
/<product_name>/ && name == "" { name = value($0) }
/<ecc_errors>/ { inEcc = 1 }
/<\/ecc_errors>/ { inEcc = 0 }
/<aggregate>/ { inAggregate = 1 }
/<\/aggregate>/ { inAggregate = 0 }
inEcc && inAggregate && /<sram_uncorrectable(_parity|_secded)?>/ {
  v = value($0); if (v ~ /^[0-9]+$/) sram += v
}
inEcc && inAggregate && /<sram_threshold_exceeded>/ { threshold = value($0) }
/<remapped_row_failure>/ { remap = value($0) }
/<fabric>/ { inFabric = 1 }
/<\/fabric>/ { inFabric = 0 }
inFabric && /<state>/ { fabric = value($0) }
END { flush() }
'

FABRIC=() # fabric state per GPU index, from check_memory, read by check_nvlink

# Row remapping (21) and aggregate SRAM (22) from one `nvidia-smi -q -x`.
check_memory() {
  local index=0 bus remap sram threshold fabric name remap_bad=() sram_bad=()
  smi_check -q -x
  if ((RC != 0)); then
    fail "$EX_GPU_CHECK" "nvidia-smi -q -x failed (exit $RC): $(head -n 3 <<<"$OUT" | tr '\n' ' ')"
  fi
  while IFS=$'\t' read -r bus remap sram threshold fabric name; do
    FABRIC[index]=$fabric
    if [[ $remap == Yes ]]; then remap_bad+=("GPU $index ($bus, $name)"); fi
    if ((sram > SRAM_UNCORRECTABLE_MAX)) || [[ $threshold == Yes ]]; then
      sram_bad+=("GPU $index ($bus, $name): $sram uncorrectable SRAM errors, threshold exceeded: $threshold")
    fi
    index=$((index + 1))
  done < <(awk "$GPU_TABLE_AWK" <<<"$OUT")
  if ((${#remap_bad[@]} > 0)); then
    fail "$EX_ROW_REMAP" "row remapping failed on ${remap_bad[*]}"
  fi
  if ((${#sram_bad[@]} > 0)); then
    fail "$EX_SRAM" "more than $SRAM_UNCORRECTABLE_MAX aggregate uncorrectable SRAM errors: ${sram_bad[*]}"
  fi
  log "row remapping and SRAM counters ok on $index GPU(s)"
}

# Per GPU of `nvidia-smi nvlink -s`: index, active links, inactive links, other lines (a GPU
# with no active link gets a message instead of a list, e.g. "NVML: Unable to retrieve NVLink
# information as all links are inActive"; a node without NVLink prints nothing at all).
# shellcheck disable=SC2016 # an awk program
readonly NVLINK_AWK='
function flush() { if (gpu != "") print gpu "\t" active "\t" inactive "\t" other }
/^GPU [0-9]+:/ { flush(); gpu = $2; sub(/:$/, "", gpu); active = 0; inactive = 0; other = ""; next }
gpu == "" { next }
/^[ \t]*Link [0-9]+:/ { if ($0 ~ /<inactive>/) inactive++; else active++; next }
NF { line = $0; sub(/^[ \t]+/, "", line); other = other (other == "" ? "" : " ") line }
END { flush() }
'

# A GPU the driver reports as part of an NVLink fabric (NVSwitch systems, Hopper and later):
# its fabric state is Not Started, In Progress or Completed, never N/A or Not Supported.
fabric_member() {
  case ${FABRIC[$1]:-N/A} in
    N/A | '' | 'Not Supported') return 1 ;;
    *) return 0 ;;
  esac
}

# NVLink (24): a GPU with some links up and others down, or a GPU of an NVLink fabric with no
# link up. A GPU with no active link that is not in a fabric is a PCIe GPU (or a bridge that was
# never fitted): not judged, so PCIe nodes pass.
check_nvlink() {
  local gpu active inactive other bad=()
  smi_check nvlink -s
  if ((RC != 0)); then
    if grep -qi 'not supported' <<<"$OUT"; then
      log "NVLink is not supported on this node"
      return 0
    fi
    cannot_check "nvidia-smi nvlink -s failed (exit $RC): ${OUT//$'\n'/ | }"
  fi
  if [[ -z ${OUT//[[:space:]]/} ]]; then
    log "no NVLink reported on this node"
    return 0
  fi
  while IFS=$'\t' read -r gpu active inactive other; do
    if ((active > 0 && inactive > 0)); then
      bad+=("GPU $gpu: $inactive of $((active + inactive)) links inactive")
    elif ((active == 0)) && fabric_member "$gpu"; then
      bad+=("GPU $gpu: no active NVLink although it is in an NVLink fabric (state ${FABRIC[$gpu]})${other:+: $other}")
    elif ((active == 0)); then
      log "GPU $gpu: no active NVLink and no NVLink fabric: no NVLink on this GPU; not judged${other:+ ($other)}"
    fi
  done < <(awk "$NVLINK_AWK" <<<"$OUT")
  if ((${#bad[@]} > 0)); then
    fail "$EX_NVLINK" "NVLink: ${bad[*]}"
  fi
  log "NVLink ok"
}

cmd_healthcheck() {
  local expected
  expected="$(pci_gpu_count)"
  if ((expected == 0)); then
    log "no NVIDIA GPU on the PCI bus; healthy"
    exit 0
  fi
  if ! find_driver_root; then
    if ((expected < 0)); then
      log "no PCI devices in $SYS_DIR and no nvidia-smi: a node without NVIDIA GPUs; healthy"
      exit 0
    fi
    cannot_check "the PCI bus shows $expected NVIDIA GPU(s) but nvidia-smi is neither on the" \
      "host nor in a GPU Operator driver root ($OPERATOR_DRIVER_ROOT): the driver is not loaded" \
      "yet or its container is not running"
  fi
  log "using ${SMI[*]} (driver root $DRIVER_ROOT)"
  check_gpus "$expected"
  check_memory
  check_nvlink
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
        find_driver_root || { log "nvidia-smi not found on the host or in a driver root"; exit 1; }
        host "${SMI[@]}" -pm 1
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
    host_t "$GPFS_TIMEOUT" "$GPFS_BIN/mmstartup"
    for ((i = 0; i < 30; i++)); do
      state="$(gpfs_state)"
      [[ $state == active ]] && break
      sleep 10
    done
    [[ $state == active ]] || { log "GPFS did not become active"; exit 1; }
  fi
  host_t "$GPFS_TIMEOUT" "$GPFS_BIN/mmmount" all
  log "GPFS active and mounted"
}

# --- diagnose -----------------------------------------------------------------------------
# One record: the hint, the command as shown to humans, then the output as `result:` lines (at
# most MAX_RESULT_LINES, the last ones, where the latest events are), then how it ended when
# that was not a success.
emit() {
  local hint=$1 shown=$2 text=$3 status=${4:-0} line total lines=()
  printf 'hint: %s\n' "$hint"
  printf 'cmd: %s\n' "$shown"
  if [[ -n $text ]]; then mapfile -t lines <<<"$text"; fi
  total=${#lines[@]}
  if ((total > MAX_RESULT_LINES)); then
    printf 'result: (%d earlier lines left out)\n' "$((total - MAX_RESULT_LINES))"
    lines=("${lines[@]: -MAX_RESULT_LINES}")
  fi
  for line in "${lines[@]}"; do printf 'result: %s\n' "$line"; done
  case $status in
    0) ((total > 0)) || printf 'result: (no output)\n' ;;
    124) printf 'result: (no answer within %ss)\n' "$CMD_TIMEOUT" ;;
    126 | 127) printf 'result: (not available on this node, exit status %s)\n' "$status" ;;
    *) printf 'result: (exit status %s)\n' "$status" ;;
  esac
}

# probe <hint> <shown> <argv…>: a host command as one record.
probe() {
  local hint=$1 shown=$2
  shift 2
  hostcap "$@"
  emit "$hint" "$shown" "$OUT" "$RC"
}

# smi_probe <hint> <args…>: nvidia-smi in the driver root as one record.
smi_probe() {
  local hint=$1
  shift
  if ! find_driver_root; then
    emit "$hint" "nvidia-smi${*:+ $*}" "nvidia-smi is neither on the host nor in a GPU Operator driver root ($OPERATOR_DRIVER_ROOT)" 127
    return
  fi
  smicap "$@"
  emit "$hint" "${SMI[*]}${*:+ $*}" "$OUT" "$RC"
}

# filtered <ERE> <argv…>: a host command's output lines matching ERE (case-insensitive).
filtered() {
  local pattern=$1
  shift
  hostcap "$@"
  OUT="$(grep -E -i -- "$pattern" <<<"$OUT" || true)"
}

# The kernel log: dmesg -T, or the kernel messages of this boot from the journal when dmesg is
# not available. Sets OUT, RC and KLOG_CMD.
kernel_log() {
  KLOG_CMD='dmesg -T'
  hostcap dmesg -T
  if ((RC != 0)); then
    KLOG_CMD='journalctl -k'
    hostcap journalctl -k --no-pager -o short-iso
  fi
}

# kernel_probe <hint> <ERE>: kernel log lines matching ERE (case-insensitive).
kernel_probe() {
  local hint=$1 pattern=$2
  kernel_log
  if ((RC == 0)); then OUT="$(grep -E -i -- "$pattern" <<<"$OUT" || true)"; fi
  emit "$hint" "$KLOG_CMD | grep -Ei '$pattern'" "$OUT" "$RC"
}

# xid_probe <code>: the NVRM Xid lines of exactly this Xid code. The line is
# "NVRM: Xid (PCI:0000:91:00): 79, pid=…, …" (MIG: "(PCI:0000:01:00 GPU-I:05)"); SXid lines of
# NVSwitches and numbers elsewhere in a line do not match.
xid_probe() {
  local code=$1 pattern
  pattern="NVRM: Xid \\([^)]*\\): $code,"
  kernel_log
  if ((RC == 0)); then OUT="$(grep -E -- "$pattern" <<<"$OUT" || true)"; fi
  emit "kernel Xid $code events" "$KLOG_CMD | grep -E '$pattern'" "$OUT" "$RC"
}

# IPMI sensors whose state is not Nominal, matching ERE.
sensor_probe() {
  local hint=$1 pattern=$2
  filtered "$pattern" ipmimonitoring --output-sensor-state --ignore-not-available-sensors
  if ((RC == 0)); then OUT="$(grep -v 'Nominal' <<<"$OUT" || true)"; fi
  emit "$hint" "ipmimonitoring --output-sensor-state | grep -Ei '$pattern' | grep -v Nominal" "$OUT" "$RC"
}

# GPUs seen by the driver against NVIDIA GPUs on the PCI bus.
gpu_count_probe() {
  local listed=-1
  if find_driver_root; then
    smicap -L
    if ((RC == 0)); then listed="$(grep -c '^GPU [0-9]' <<<"$OUT" || true)"; fi
  fi
  emit "GPUs seen by the driver vs NVIDIA GPUs on the PCI bus" "nvidia-smi -L | grep -c ^GPU; $SYS_DIR/bus/pci/devices (vendor 0x10de, class 0x0300/0x0302)" \
    "nvidia-smi: $listed GPU(s) (-1: could not ask)"$'\n'"PCI bus: $(pci_gpu_count) NVIDIA GPU(s)"
}

# PCIe link of an RDMA device (its PCI address from sysfs): capability against status, MRR.
hca_link_probe() {
  local dev=$1 bdf
  hostcap readlink -f "/sys/class/infiniband/$dev/device"
  bdf=${OUT##*/}
  if ((RC != 0)) || [[ ! $bdf =~ $PCI_BDF_RE ]]; then
    emit "PCIe link of $dev" "readlink -f /sys/class/infiniband/$dev/device" "$OUT" "$RC"
    return
  fi
  filtered 'LnkCap:|LnkSta:|MaxReadReq' lspci -s "$bdf" -vvv
  emit "PCIe link of $dev ($bdf): capability vs status, MaxReadReq (expect 4096)" "lspci -s $bdf -vvv | grep -E 'LnkCap|LnkSta|MaxReadReq'" "$OUT" "$RC"
}

# ibstat of one HCA, or of every HCA when the id is not an HCA name.
ibstat_probe() {
  if [[ -n $1 ]]; then
    probe "InfiniBand port state of $1 (expect State: Active, Physical state: LinkUp)" "ibstat $1" ibstat "$1"
  else
    probe "InfiniBand port states (expect State: Active, Physical state: LinkUp)" "ibstat" ibstat
  fi
}

# shellcheck disable=SC2016 # $1 is expanded by the host's sh, on purpose
ib_counters_probe() {
  local dev=${1:-*}
  probe "InfiniBand port error counters of $dev" "grep -H . /sys/class/infiniband/$dev/ports/*/counters/{symbol_error,link_downed,link_error_recovery,port_rcv_errors,port_xmit_discards}" \
    sh -c 'for f in /sys/class/infiniband/$1/ports/*/counters/symbol_error /sys/class/infiniband/$1/ports/*/counters/link_downed /sys/class/infiniband/$1/ports/*/counters/link_error_recovery /sys/class/infiniband/$1/ports/*/counters/port_rcv_errors /sys/class/infiniband/$1/ports/*/counters/port_xmit_discards; do [ -r "$f" ] && printf "%s: %s\n" "$f" "$(cat "$f")"; done' sh "$dev"
}

# Every kind of mmfs.log event a GPFS condition names.
gpfs_log_probe() {
  local hint=$1 pattern=$2
  filtered "$pattern" tail -n 2000 /var/adm/ras/mmfs.log.latest
  emit "$hint" "tail -n 2000 /var/adm/ras/mmfs.log.latest | grep -Ei '$pattern'" "$OUT" "$RC"
}

gpfs_probe() {
  local hint=$1 shown=$2
  shift 2
  probe "$hint" "$shown" "$GPFS_BIN/$1" "${@:2}"
}

# Xid code of a catalogue name: Xid79GPULost → 79; the v1 aliases name no code.
xid_code() {
  case $1 in
    XIDECCMemoryErr) echo 48 ;;
    XIDHWSystemErr) echo 79 ;;
    Xid[0-9]*)
      local rest=${1#Xid}
      echo "${rest%%[!0-9]*}"
      ;;
  esac
}

cmd_diagnose() {
  local type=$1 id=${2:-} gpu=() dev='' code index mask list=''
  [[ $type =~ $TYPE_RE ]] || usage "invalid diagnose type" "$type"
  if [[ -n $id ]]; then
    [[ $id =~ $ID_RE ]] || usage "invalid diagnose id" "$id"
    if [[ $id =~ $GPU_INDEX_RE ]]; then
      gpu=(-i "$id")
    elif [[ $id =~ $GPU_MASK_RE ]]; then
      mask=$id
      for ((index = 0; index < ${#mask}; index++)); do
        [[ ${mask:index:1} == 1 ]] && list+="${list:+,}$index"
      done
      [[ -z $list ]] || gpu=(-i "$list")
    fi
    [[ ! $id =~ $DEV_RE ]] || dev=$id
  fi
  case $type in
    # --- GPU: the driver's view ---
    Xid* | XID*)
      code="$(xid_code "$type")"
      if [[ -z $code ]]; then
        emit "no Xid code in $type" "-" ""
        return
      fi
      xid_probe "$code"
      case $code in
        48 | 63 | 64 | 94 | 95) smi_probe "ECC counters and row remapper" -q -d ECC,ROW_REMAPPER "${gpu[@]}" ;;
        74) smi_probe "NVLink status per link" nvlink -s "${gpu[@]}" ;;
        79 | 119 | 120) gpu_count_probe ;;
      esac
      ;;
    GpuHung | GpuCheckFailed)
      smi_probe "GPUs the driver lists" -L
      smi_probe "driver view of the GPUs" "${gpu[@]}"
      kernel_probe "kernel NVRM messages" 'NVRM'
      ;;
    GpuErrResetRequired)
      smi_probe "reset status and recovery action" -q -d RESET_STATUS "${gpu[@]}"
      kernel_probe "kernel messages asking for a reset" 'NvErrResetRequired|reset required|Xid'
      ;;
    GpuDown)
      gpu_count_probe
      xid_probe 79
      ;;
    GpuRowRemappingFailure | GpuRowRemappingPending | GPURowRemappingPending)
      smi_probe "row remapper state" -q -d ROW_REMAPPER "${gpu[@]}"
      ;;
    GpuAggSramUncorrectable | GpuVolSramUncorrectable | GpuVolDramUncorrectable)
      smi_probe "ECC counters (aggregate SRAM uncorrectable > $SRAM_UNCORRECTABLE_MAX fails)" -q -d ECC "${gpu[@]}"
      ;;
    GpuTooManyPageRetired | GpuPageRetirementPending)
      smi_probe "retired and pending pages" -q -d PAGE_RETIREMENT "${gpu[@]}"
      ;;
    HighGpuTemp | HighGpuMemoryTemp | GpuThermalViolation)
      smi_probe "temperatures and clock event reasons" -q -d TEMPERATURE,PERFORMANCE "${gpu[@]}"
      ;;
    GpuSmClkSlowDown | GpuHWSlowdown | GPUHWSlowdown)
      smi_probe "clocks and clock event reasons (HW slowdown, power brake, thermal)" -q -d CLOCK,PERFORMANCE "${gpu[@]}"
      ;;
    GpuPcieReplayErrors | GpuPcieLinkDegraded | GpuPcieDowngraded)
      smi_probe "PCIe link generation and width, current vs max" --query-gpu=index,pci.bus_id,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max --format=csv "${gpu[@]}"
      ;;
    GpuNvlinkInactive)
      smi_probe "NVLink status per link" nvlink -s "${gpu[@]}"
      ;;
    GpuNvlinkError | GpuNvlinkCrcErrors | GpuNvlinkReplayErrors)
      smi_probe "NVLink error counters" nvlink -e "${gpu[@]}"
      smi_probe "NVLink status per link" nvlink -s "${gpu[@]}"
      ;;
    GpuP2PNotSupported)
      smi_probe "GPU peer-to-peer read capability" topo -p2p r
      ;;
    GPUIbgdaNotEnabled | GpuIbgdaNotEnabled)
      filtered 'EnableStreamMemOPs|PeerMappingOverride' cat /proc/driver/nvidia/params
      emit "NVIDIA driver parameters IBGDA needs (EnableStreamMemOPs: 1, PeerMappingOverride: 1)" "grep -E 'EnableStreamMemOPs|PeerMappingOverride' /proc/driver/nvidia/params" "$OUT" "$RC"
      ;;
    NvidiaFabricManagerNotActive)
      probe "fabric manager service" "systemctl status nvidia-fabricmanager" systemctl status nvidia-fabricmanager --no-pager
      ;;
    GpuPersistenceModeNotEnabled)
      smi_probe "persistence mode per GPU" --query-gpu=index,persistence_mode --format=csv
      ;;
    # --- CPU, memory, disk, baseboard ---
    BaseBoardCriticalIssue)
      sensor_probe "BMC sensors not Nominal${id:+ ($id)}" "${id:-.}"
      ;;
    CpuUnhealthy)
      sensor_probe "processor sensors not Nominal" 'processor|cpu'
      ;;
    CpuMachineCheckError)
      kernel_probe "machine check events" 'mce|machine check|hardware error'
      ;;
    MemoryUnhealthy)
      sensor_probe "memory sensors not Nominal" 'memory|dimm'
      ;;
    MemoryUncorrectableErrors)
      # shellcheck disable=SC2016 # expanded by the host's sh
      probe "EDAC error counters per memory controller" "grep -H . /sys/devices/system/edac/mc/mc*/{ue,ce}_count" \
        sh -c 'for f in /sys/devices/system/edac/mc/mc*/ue_count /sys/devices/system/edac/mc/mc*/ce_count; do [ -r "$f" ] && printf "%s: %s\n" "$f" "$(cat "$f")"; done'
      kernel_probe "kernel EDAC messages" 'EDAC|memory error'
      ;;
    MemoryHardwareCorrupted)
      filtered 'HardwareCorrupted' cat /proc/meminfo
      emit "memory taken offline as hardware-corrupted" "grep HardwareCorrupted /proc/meminfo" "$OUT" "$RC"
      kernel_probe "kernel memory failure messages" 'memory failure|hardware memory error|poison'
      ;;
    DiskUnhealthy)
      sensor_probe "drive sensors not Nominal" 'drive|disk'
      ;;
    DiskReadOnly | NpdReadonlyFilesystem)
      probe "local filesystems mounted read-only" "findmnt -rn -t ext2,ext3,ext4,xfs,btrfs -O ro -o TARGET,SOURCE,FSTYPE,OPTIONS" \
        findmnt -rn -t ext2,ext3,ext4,xfs,btrfs -O ro -o TARGET,SOURCE,FSTYPE,OPTIONS
      kernel_probe "kernel I/O and filesystem errors" 'I/O error|EXT4-fs error|XFS .*error|BTRFS error|remount'
      ;;
    NpdXfsShutdown)
      probe "XFS filesystems mounted" "findmnt -rn -t xfs -o TARGET,SOURCE,OPTIONS" findmnt -rn -t xfs -o TARGET,SOURCE,OPTIONS
      kernel_probe "kernel XFS shutdowns and errors" 'XFS .*(shut|error|corrupt)'
      ;;
    NpdDiskBadBlock)
      probe "smartd reports (pending and offline uncorrectable sectors)" "journalctl -u smartd --no-pager -n $MAX_RESULT_LINES" \
        journalctl -u smartd --no-pager -n "$MAX_RESULT_LINES"
      probe "SMART health of every drive" "smartctl --scan-open" smartctl --scan-open
      ;;
    NpdHardwareErrorFatal)
      kernel_probe "firmware hardware error records (UEFI CPER)" 'Hardware Error|CPER|event severity'
      sensor_probe "BMC sensors not Nominal" '.'
      ;;
    DiskSmartFailing)
      if [[ -n $dev ]]; then
        probe "SMART health of /dev/$dev" "smartctl -H /dev/$dev" smartctl -H "/dev/$dev"
      else
        probe "SMART health of every drive" "smartctl --scan-open" smartctl --scan-open
      fi
      ;;
    # --- network ---
    NetworkLinkDown)
      probe "link state of every interface" "ip -br link" ip -br link
      probe "bond members" "cat /proc/net/bonding/${dev:-bond0}" cat "/proc/net/bonding/${dev:-bond0}"
      ;;
    NetworkLinkFrequentDown | NetworkInterfaceDown | LinkDown)
      if [[ -n $dev ]]; then
        probe "link state and counters of $dev" "ip -s link show dev $dev" ip -s link show dev "$dev"
        kernel_probe "kernel link messages of $dev" "$dev.*(link|carrier)"
      else
        probe "link state of every interface" "ip -br link" ip -br link
        kernel_probe "kernel link messages" 'link is (up|down)|carrier'
      fi
      ;;
    DnsTestFailed)
      probe "resolver configuration" "cat /etc/resolv.conf" cat /etc/resolv.conf
      probe "resolver service" "systemctl status systemd-resolved" systemctl status systemd-resolved --no-pager
      ;;
    # --- InfiniBand ---
    IBLost | IBDown)
      probe "HCAs registered in the RDMA stack" "ibstat -l" ibstat -l
      filtered '15b3:' lspci -nn -d 15b3:
      emit "Mellanox PCI functions (each should appear in ibstat -l)" "lspci -nn -d 15b3:" "$OUT" "$RC"
      ;;
    IBModuleLost | IBModuleNotInstalled)
      filtered '^(mlx5|ib_|rdma)' lsmod
      emit "RDMA kernel modules loaded (mlx5_core, mlx5_ib, ib_core, ib_uverbs, ib_umad, rdma_cm …)" "lsmod | grep -E '^(mlx5|ib_|rdma)'" "$OUT" "$RC"
      ;;
    IBNetDriverFailedLoad)
      # shellcheck disable=SC2016 # expanded by the host's sh
      probe "network device of ${dev:-each HCA}" "ls /sys/class/infiniband/${dev:-*}/device/net" \
        sh -c 'for d in /sys/class/infiniband/$1/device/net; do printf "%s: %s\n" "$d" "$(ls "$d" 2>&1)"; done' sh "${dev:-*}"
      kernel_probe "kernel mlx5 messages" 'mlx5'
      ;;
    IBPCIeMRRNotAlign | IBPCIeSpeedAbnormal | IBPCIeWidthAbnormal | IBPcieDowngraded)
      if [[ -n $dev ]]; then
        hca_link_probe "$dev"
      else
        filtered 'LnkCap:|LnkSta:|MaxReadReq|^[0-9a-f]' lspci -d 15b3: -vvv
        emit "PCIe links of the Mellanox devices" "lspci -d 15b3: -vvv | grep -E 'LnkCap|LnkSta|MaxReadReq'" "$OUT" "$RC"
      fi
      ;;
    IBPortSpeedAbnormal | IBProtoclAbnormal | IBLinkAbnormal)
      ibstat_probe "$dev"
      ;;
    IBLinkFrequentDown | IBReceivedError | IBTrasmittedError | IBTransmittedError | IBSymbolError | IBLinkErrorRecovery)
      ibstat_probe "$dev"
      ib_counters_probe "$dev"
      ;;
    # --- RoCE ---
    RoceDeviceBroken | RoceHostOffline | RoceHostGatewayNotMatch | RoceHostRouteMiss | RocePodOffline | RocePodGatewayNotMatch | RocePodRouteMiss | RocePodDeviceMiss)
      probe "RDMA links and their network devices" "rdma link show" rdma link show
      probe "addresses of every interface" "ip -br addr" ip -br addr
      probe "routes (every table)" "ip route show table all" ip route show table all
      ;;
    RoceNodeLabelMiss | RoceNodeUnitLabelMiss | RoceNodePfNamesLabelMiss | RoceNodeResourceLabelMiss | RoceNodeNetworkLabelMiss)
      probe "RDMA devices the RoCE node labels should describe (labels are on the Kubernetes Node object)" "rdma link show" rdma link show
      ;;
    RoceVfDeviceMiss | RoceSriovInitError)
      if [[ -n $dev ]]; then
        probe "SR-IOV virtual functions of $dev (numvfs vs totalvfs)" "cat /sys/class/net/$dev/device/sriov_{numvfs,totalvfs}" \
          cat "/sys/class/net/$dev/device/sriov_numvfs" "/sys/class/net/$dev/device/sriov_totalvfs"
        probe "virtual functions of $dev" "ip link show dev $dev" ip link show dev "$dev"
      else
        probe "RDMA links and their network devices" "rdma link show" rdma link show
      fi
      kernel_probe "kernel SR-IOV messages" 'sriov|SR-IOV|mlx5.*VF'
      ;;
    # --- GPFS ---
    GpfsIBNotConfig | GpfsRdmaError)
      gpfs_probe "GPFS network health (IB_RDMA)" "mmhealth node show network" mmhealth node show network
      ;;
    GpfsTestFailed | GpfsNodeNotHealthy)
      gpfs_probe "GPFS health of this node" "mmhealth node show" mmhealth node show
      probe "GPFS file systems mounted" "findmnt -t gpfs" findmnt -t gpfs
      ;;
    GpfsNotMounted)
      probe "GPFS file systems mounted" "findmnt -t gpfs" findmnt -t gpfs
      gpfs_probe "GPFS daemon state" "mmgetstate" mmgetstate
      ;;
    GpfsNotStarted | GpfsNotInCluster)
      gpfs_probe "GPFS daemon state" "mmgetstate" mmgetstate
      gpfs_probe "GPFS cluster membership" "mmlscluster" mmlscluster
      ;;
    GpfsNotInstalled)
      probe "GPFS commands on the host" "ls $GPFS_BIN" ls "$GPFS_BIN"
      ;;
    GpfsExpelledFromCluster)
      gpfs_log_probe "GPFS expel events" 'expel'
      ;;
    GpfsQuorumConnectionDown)
      gpfs_log_probe "GPFS quorum connection events" 'quorum|lost connection|connection .* (broken|closed)'
      ;;
    GpfsThreadDeadlock)
      gpfs_probe "GPFS deadlock detection" "mmdiag --deadlock" mmdiag --deadlock
      ;;
    # --- system ---
    KernelPanic)
      probe "previous boot's kernel errors" "journalctl -k -b -1 -p err --no-pager | tail" journalctl -k -b -1 -p err --no-pager -n "$MAX_RESULT_LINES"
      probe "panic records kept in pstore" "ls -l /sys/fs/pstore" ls -l /sys/fs/pstore
      ;;
    KernelSoftLockup | NpdKernelDeadlock)
      kernel_probe "CPU lockups" 'soft lockup|hard lockup|hung_task|blocked for more than'
      ;;
    NodeClockUnsynced | NpdNTPProblem)
      probe "clock synchronisation" "timedatectl status" timedatectl status
      probe "chrony tracking" "chronyc tracking" chronyc tracking
      ;;
    ProcessTableNearlyFull)
      probe "pid limit" "cat /proc/sys/kernel/pid_max" cat /proc/sys/kernel/pid_max
      hostcap ps -e -o user=
      if ((RC == 0)); then OUT="$(sort <<<"$OUT" | uniq -c | sort -rn | head -n 10)"; fi
      emit "processes per user (top 10)" "ps -e -o user= | sort | uniq -c | sort -rn | head" "$OUT" "$RC"
      ;;
    *)
      emit "no diagnosis recipe for $type" "-" ""
      ;;
  esac
}

# ---- validate: the tests before return to service (src/jobs/validation.ts reads this output) ----
# Each test's output goes between `aegis-validate: begin <test> <args>` and
# `aegis-validate: end <test> rc=<status>`; a test not asked prints `skip`, a tool the host lacks
# prints `missing`. The verdict is the controller's (floors are in its config), so this exits 0.

# validate_run <test> <args> <compact 0|1> <argv…>: a host command with the validation deadline.
validate_run() {
  local test=$1 args=$2 compact=$3 file rc=0
  shift 3
  file="$(mktemp "${TMPDIR:-/tmp}/aegis-validate.XXXXXX")"
  printf 'aegis-validate: begin %s %s\n' "$test" "$args"
  timeout -k "$KILL_GRACE" "$VALIDATE_TIMEOUT" "${NSENTER[@]}" "$@" </dev/null >"$file" 2>&1 || rc=$?
  if ((compact)); then
    # JSON on one line (newlines and tabs are never inside JSON strings), so the log tail keeps it.
    tr '\n\t' '  ' <"$file"
    printf '\n'
  else
    tail -n 120 "$file"
  fi
  rm -f "$file"
  printf 'aegis-validate: end %s rc=%d\n' "$test" "$rc"
}

# The first InfiniBand HCA with an ACTIVE port 1 (sysfs), or nothing.
first_active_hca() {
  local d
  for d in "$SYS_DIR"/class/infiniband/*; do
    [[ -r $d/ports/1/state ]] || continue
    if grep -q ACTIVE "$d/ports/1/state"; then
      printf '%s\n' "${d##*/}"
      return 0
    fi
  done
  return 1
}

cmd_validate() {
  local level=$1 gpus=$2 ib=$3 n
  [[ $level =~ $VALIDATE_LEVEL_RE ]] || usage "invalid DCGM level" "$level"
  [[ $gpus =~ $VALIDATE_GPUS_RE ]] || usage "invalid NCCL GPU count" "$gpus"
  [[ $ib =~ $VALIDATE_IB_RE ]] || usage "invalid IB device" "$ib"
  if ((level == 0)); then
    echo 'aegis-validate: skip dcgm (not asked)'
  elif ! host_has dcgmi; then
    echo 'aegis-validate: missing dcgm dcgmi'
  else
    validate_run dcgm "level=$level" 1 dcgmi diag -r "$level" -j
  fi
  if [[ $gpus == 0 ]]; then
    echo 'aegis-validate: skip nccl (not asked)'
  elif ! host_has all_reduce_perf; then
    echo 'aegis-validate: missing nccl all_reduce_perf'
  else
    n=$gpus
    if [[ $n == all ]]; then n="$(compgen -G '/dev/nvidia[0-9]*' | wc -l)"; fi
    if ((n < 1)); then
      echo 'aegis-validate: missing nccl GPU devices (/dev/nvidia[0-9]*)'
    else
      validate_run nccl "gpus=$n" 0 all_reduce_perf "${NCCL_TEST_ARGS[@]}" -g "$n"
    fi
  fi
  if [[ $ib == none ]]; then
    echo 'aegis-validate: skip ib (not asked)'
  elif ! host_has ib_write_bw; then
    echo 'aegis-validate: missing ib ib_write_bw'
  else
    if [[ $ib == auto ]]; then ib="$(first_active_hca || true)"; fi
    if [[ -z $ib ]]; then
      echo 'aegis-validate: missing ib an HCA with an active port'
    else
      # Loopback: a server and a client on the same HCA, over the host's loopback for the handshake.
      host_t "$((VALIDATE_TIMEOUT + 30))" ib_write_bw -d "$ib" -F --report_gbits -s 1048576 -D 5 >/dev/null 2>&1 &
      sleep 2
      validate_run ib "device=$ib" 0 ib_write_bw -d "$ib" -F --report_gbits -s 1048576 -D 5 localhost
      wait || true
    fi
  fi
}

main() {
  (($# >= 1)) || usage "no action given"
  local action=$1
  shift
  [[ $JOB_NAME =~ $JOB_RE ]] || usage "invalid AEGIS_JOB_NAME" "$JOB_NAME"
  [[ $CMD_TIMEOUT =~ $TIMEOUT_RE ]] || usage "invalid AEGIS_CMD_TIMEOUT (seconds, 1-99999)" "$CMD_TIMEOUT"
  if ((CMD_TIMEOUT < 10)); then KILL_GRACE=1; fi
  GPFS_TIMEOUT=$((CMD_TIMEOUT * 5))
  readonly KILL_GRACE GPFS_TIMEOUT
  if [[ -n $DRIVER_ROOT_SETTING && ! $DRIVER_ROOT_SETTING =~ $ROOT_RE ]]; then
    usage "invalid AEGIS_DRIVER_ROOT (an absolute path)" "$DRIVER_ROOT_SETTING"
  fi
  [[ $OPERATOR_DRIVER_ROOT =~ $ROOT_RE ]] || usage "invalid AEGIS_OPERATOR_DRIVER_ROOT" "$OPERATOR_DRIVER_ROOT"
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
    validate)
      (($# == 3)) || usage "validate takes a DCGM level, an NCCL GPU count and an IB device"
      cmd_validate "$@"
      ;;
    *) usage "unknown action" "$action" ;;
  esac
}

main "$@"
