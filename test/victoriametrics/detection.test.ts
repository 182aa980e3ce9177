/**
 * The detection cases of the real-Prometheus tier (test/helpers/detection-cases.ts) on a real
 * VictoriaMetrics, built from the VictoriaMetrics Go module (scripts/build-vm-bins.sh), fed by a
 * real Prometheus's remote write and queried through its Prometheus API with
 * `prometheus.flavor: victoriametrics`: the same faults on the same nodes and devices, nothing on
 * a healthy fleet, the history rules on an imported timeline.
 */
import { detectionCases } from '../helpers/detection-cases.js';
import { VM_BACKEND } from '../helpers/vm-harness.js';

detectionCases(VM_BACKEND);
