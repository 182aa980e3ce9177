/**
 * Real exporter output (test/fixtures/prometheus/, public captures) served to a real Prometheus
 * 2.42, read by the daemon's Inspector: the cases of issue 13, shared with the VictoriaMetrics
 * tier (test/helpers/capture-cases.ts). Lookback 20 s.
 */
import { captureCases } from '../helpers/capture-cases.js';
import { PROMETHEUS_BACKEND } from '../helpers/detection-cases.js';

captureCases(PROMETHEUS_BACKEND);
