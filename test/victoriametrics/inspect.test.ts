/**
 * `aegis inspect` (config `prometheus.flavor: victoriametrics`) against a real VictoriaMetrics fed
 * by a real Prometheus's remote write: the cases of the real-Prometheus tier, the same answers.
 */
import { inspectCases } from '../helpers/detection-cases.js';
import { VM_BACKEND } from '../helpers/vm-harness.js';

inspectCases(VM_BACKEND);
