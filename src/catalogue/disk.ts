import type { CatalogueEntry } from './types.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * Pods' volumes as the kubelet mounts them (`/var/lib/kubelet/pods/<uid>/volumes/…`, and CSI
 * staging under `/var/lib/kubelet/plugins/`): a tenant's PVC, full or mounted read-only (a
 * ReadOnlyMany claim), is not the node's disk. node_exporter reports them by default.
 */
const POD_VOLUMES = '/var/lib/kubelet/(pods|plugins)/.+';

/** Filesystems that are not local disks: never reported as full, read-only or broken. */
const VIRTUAL_FS =
  'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|iso9660|nfs.*|fuse.*|gpfs|ceph",' +
  `mountpoint!~"${POD_VOLUMES}"`;

/**
 * Mount points read-only by design, left out of DiskReadOnly (anchored regexes; config
 * `detection.readOnlyMounts` replaces the list):
 * - `/usr`: immutable operating systems (Flatcar, Bottlerocket, Fedora CoreOS / RHCOS via ostree)
 *   mount it read-only, and a containerized node_exporter sees bind mounts such as
 *   `/usr/lib/modules` read-only;
 * - `/boot`, `/boot/efi`: mounted read-only by some hardened images;
 * - `/sysroot`: the ostree physical root, read-only on RHCOS and Fedora CoreOS;
 * - `/snap/…`: snap packages (squashfs, also excluded by type);
 * - container runtimes' own mounts (`/var/lib/containers`, `/var/lib/docker`,
 *   `/var/lib/containerd`, `/run/containerd`): image layers and read-only bind mounts.
 */
export const DEFAULT_READ_ONLY_MOUNTS: readonly string[] = [
  '/usr(/.*)?',
  '/boot(/.*)?',
  '/sysroot(/.*)?',
  '/snap/.*',
  '/var/lib/(containers|docker|containerd)/.*',
  '/run/containerd/.*',
];

/** A PromQL string literal (Go escapes: backslash, quote, control characters). */
function quote(text: string): string {
  return JSON.stringify(text);
}

/**
 * Host disk conditions: filesystem state from node-exporter, drive health from the BMC.
 * DiskReadOnly leaves out pods' volumes and `readOnlyMounts` (mount points meant to be read-only).
 */
export function diskConditions(readOnlyMounts: readonly string[]): CatalogueEntry[] {
  const notReadOnlyByDesign = quote([POD_VOLUMES, ...readOnlyMounts].join('|'));
  return [
    {
      name: 'DiskPressure',
      domain: 'Disk',
      description: 'A local filesystem is more than 85 % full; id = mount point, value = % used.',
      signal: 'node-exporter',
      expr:
        `max by (node, mountpoint) ((1 - node_filesystem_avail_bytes{${VIRTUAL_FS}} ` +
        '/ node_filesystem_size_bytes) * 100) > 85',
      deviceLabel: 'mountpoint',
      forMs: 5 * MIN,
      clearForMs: 10 * MIN,
      clear: 'Usage below 85 % for 10 minutes.',
      priority: 99,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'disk.pressure',
      fault: {
        defaultDevice: '/',
        series: [
          { metric: 'node_filesystem_avail_bytes', labels: { mountpoint: '{device}' }, value: 1e9 },
          { metric: 'node_filesystem_size_bytes', labels: { mountpoint: '{device}' }, value: 1e11 },
        ],
      },
    },
    {
      name: 'DiskUnhealthy',
      domain: 'Disk',
      description:
        'The BMC reports a drive slot in warning or critical state, or the chassis drive-fault flag ' +
        '(ipmi_chassis_drive_fault_state is 0 = fault, inverted); id = sensor name or `chassis`.',
      signal: 'ipmi-exporter',
      expr:
        'max by (node, name) (ipmi_sensor_state{type="Drive Slot"}) > 0 ' +
        'or max by (node, name) (label_replace(ipmi_chassis_drive_fault_state == bool 0, "name", "chassis", "node", ".*")) > 0',
      deviceLabel: 'name',
      forMs: 10 * MIN,
      clearForMs: 30 * MIN,
      clear: 'Every drive sensor nominal for 30 minutes.',
      priority: 99,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'disk.replace',
      fault: {
        defaultDevice: 'Drive 0',
        series: [
          {
            metric: 'ipmi_sensor_state',
            labels: { name: '{device}', type: 'Drive Slot' },
            value: 2,
          },
        ],
      },
    },
    {
      name: 'DiskReadOnly',
      domain: 'Disk',
      description:
        'A local ext/xfs/btrfs filesystem is mounted read-only (typically remounted after I/O errors). ' +
        "Pods' volumes under /var/lib/kubelet (a read-only PVC) and mount points meant to be read-only " +
        '(config `detection.readOnlyMounts`; default /usr, /boot, /sysroot, snaps, container runtimes) are left out.',
      signal: 'node-exporter',
      expr:
        'max by (node, mountpoint) (node_filesystem_readonly{fstype=~"ext[234]|xfs|btrfs",' +
        `mountpoint!~${notReadOnlyByDesign}}) == 1`,
      deviceLabel: 'mountpoint',
      forMs: MIN,
      clearForMs: 10 * MIN,
      clear: 'The filesystem is read-write again for 10 minutes.',
      priority: 51,
      affectsLoad: true,
      deviceIdMode: 'id',
      sop: 'disk.replace',
      fault: {
        defaultDevice: '/',
        series: [
          {
            metric: 'node_filesystem_readonly',
            labels: { mountpoint: '{device}', fstype: 'ext4' },
            value: 1,
          },
        ],
      },
    },
    {
      name: 'DiskDeviceError',
      domain: 'Disk',
      description:
        'node-exporter cannot stat a mounted filesystem (hung or broken mount). Record only.',
      signal: 'node-exporter',
      expr: `max by (node, mountpoint) (node_filesystem_device_error{fstype!~"tmpfs|ramfs|squashfs",mountpoint!~"${POD_VOLUMES}"}) == 1`,
      deviceLabel: 'mountpoint',
      forMs: 5 * MIN,
      clearForMs: 5 * MIN,
      clear: 'The mount answers stat() again.',
      priority: 100,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: null,
      fault: {
        defaultDevice: '/data',
        series: [
          { metric: 'node_filesystem_device_error', labels: { mountpoint: '{device}' }, value: 1 },
        ],
      },
    },
    {
      name: 'InodePressure',
      domain: 'Disk',
      description: 'A local filesystem has used more than 95 % of its inodes; value = % used.',
      signal: 'node-exporter',
      expr:
        `max by (node, mountpoint) ((1 - node_filesystem_files_free{${VIRTUAL_FS}} ` +
        '/ node_filesystem_files) * 100) > 95',
      deviceLabel: 'mountpoint',
      forMs: 5 * MIN,
      clearForMs: 10 * MIN,
      clear: 'Inode usage below 95 % for 10 minutes.',
      priority: 100,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'disk.pressure',
      fault: {
        defaultDevice: '/',
        series: [
          { metric: 'node_filesystem_files_free', labels: { mountpoint: '{device}' }, value: 100 },
          {
            metric: 'node_filesystem_files',
            labels: { mountpoint: '{device}' },
            value: 10_000_000,
          },
        ],
      },
    },
    {
      name: 'DiskIOPressure',
      domain: 'Disk',
      description:
        'A block device was busy more than 95 % of the last 10 minutes (io_time); id = device.',
      signal: 'node-exporter',
      expr: 'max by (node, device) (increase(node_disk_io_time_seconds_total{device!~"dm-.*|loop.*|sr.*"}[10m])) > 570',
      deviceLabel: 'device',
      forMs: 0,
      clearForMs: 5 * MIN,
      clear: 'Device busy less than 95 % of a 10-minute window.',
      priority: 100,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: null,
      fault: {
        defaultDevice: 'nvme0n1',
        series: [
          { metric: 'node_disk_io_time_seconds_total', labels: { device: '{device}' }, add: 600 },
        ],
      },
    },
    {
      name: 'DiskSmartFailing',
      domain: 'Disk',
      description:
        'The node check reads a failing SMART / NVMe health verdict for a drive; id = block device.',
      signal: 'aegis-nodecheck',
      expr: 'max by (node, device) (aegis_nodecheck_problem{check="DiskSmartFailing"}) > 0',
      deviceLabel: 'device',
      forMs: 0,
      clearForMs: HOUR,
      clear: 'The drive reports healthy for an hour (after replacement).',
      priority: 99,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'disk.replace',
      fault: {
        defaultDevice: 'nvme0n1',
        series: [
          {
            metric: 'aegis_nodecheck_problem',
            labels: { check: 'DiskSmartFailing', device: '{device}' },
            value: 1,
          },
        ],
      },
    },
  ];
}

/** Host disk conditions with the default read-only mount points (config: applyDetectionConfig). */
export const DISK_CONDITIONS: readonly CatalogueEntry[] = diskConditions(DEFAULT_READ_ONLY_MOUNTS);
