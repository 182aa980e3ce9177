/**
 * `aegis inspect` against a real Prometheus scraping the simulator's exporters, JSON and text;
 * the cases are shared with the VictoriaMetrics tier (test/helpers/detection-cases.ts).
 */
import { inspectCases, PROMETHEUS_BACKEND } from '../helpers/detection-cases.js';

inspectCases(PROMETHEUS_BACKEND);
