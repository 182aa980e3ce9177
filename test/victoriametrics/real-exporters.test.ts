/**
 * The captures-with-edits cases of issue 13 (test/helpers/capture-cases.ts) on a real
 * VictoriaMetrics fed by a real Prometheus's remote write (`-search.maxLookback` 10 s, as the
 * Prometheus tier's lookback): the same answers as on Prometheus.
 */
import { captureCases } from '../helpers/capture-cases.js';
import { VM_BACKEND } from '../helpers/vm-harness.js';

captureCases(VM_BACKEND);
