/**
 * Keeps the kube-state-metrics series of a node in step with the simulated node object, as the real
 * kube-state-metrics would: Ready condition, spec.unschedulable, node labels; plus the series the
 * node's power state changes (BMC power state, boot time).
 */
import type { SeriesStore } from './series-store.js';
import { toKsmLabelName } from './series-labels.js';
import { hold, release, type Track } from './track.js';

const HOLD = 'k8s';

/** Publishes the Ready condition: true is the baseline, false/Unknown are held. */
export function publishReady(
  store: SeriesStore,
  node: string,
  ready: boolean | 'Unknown',
  atMs: number,
): void {
  for (const status of ['true', 'false', 'unknown'] as const) {
    for (const track of store.match('kube_node_status_condition', node, {
      condition: 'Ready',
      status,
    })) {
      if (ready === true) {
        release(track, HOLD, atMs);
        continue;
      }
      const on =
        (status === 'false' && ready === false) || (status === 'unknown' && ready === 'Unknown');
      hold(track, HOLD, on ? 1 : 0, atMs);
    }
  }
}

/** Publishes spec.unschedulable. */
export function publishUnschedulable(
  store: SeriesStore,
  node: string,
  unschedulable: boolean,
  atMs: number,
): void {
  for (const track of store.match('kube_node_spec_unschedulable', node, {})) {
    if (unschedulable) hold(track, HOLD, 1, atMs);
    else release(track, HOLD, atMs);
  }
}

/**
 * Publishes the node's labels as `kube_node_labels`: a changed label set is a new series (the old
 * one ends), exactly as Prometheus sees it. `original` means the fleet's own labels (the baseline).
 */
export function publishLabels(
  store: SeriesStore,
  node: string,
  labels: Readonly<Record<string, string>>,
  original: boolean,
  atMs: number,
): void {
  const tracks = store.match('kube_node_labels', node, {});
  for (const track of tracks) {
    if (track.labels === undefined) {
      if (original) release(track, HOLD, atMs);
      else hold(track, HOLD, null, atMs);
    } else {
      release(track, HOLD, atMs);
    }
  }
  if (original) return;
  const ksm: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) ksm[toKsmLabelName(k)] = v;
  const track: Track = store.create('kube_node_labels', node, ksm, false);
  hold(track, HOLD, 1, atMs);
}

/** Publishes the BMC's chassis power state (the BMC keeps answering while the host is off). */
export function publishPower(store: SeriesStore, node: string, on: boolean, atMs: number): void {
  for (const track of store.match('ipmi_chassis_power_state', node, {})) {
    if (on) release(track, 'power', atMs);
    else hold(track, 'power', 0, atMs);
  }
}

/** Publishes a new boot time (node-exporter's `node_boot_time_seconds`) after a boot. */
export function publishBoot(store: SeriesStore, node: string, bootedAtMs: number): void {
  for (const track of store.match('node_boot_time_seconds', node, {})) {
    hold(track, 'boot', Math.floor(bootedAtMs / 1000), bootedAtMs);
  }
}
