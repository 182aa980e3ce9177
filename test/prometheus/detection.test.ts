/**
 * The key tier: every catalogue PromQL runs on a real Prometheus 2.42 scraping the simulator, and
 * the rules needing older history on one fed by `promtool tsdb create-blocks-from openmetrics`.
 * The cases are shared with the VictoriaMetrics tier (test/helpers/detection-cases.ts).
 */
import { detectionCases, PROMETHEUS_BACKEND } from '../helpers/detection-cases.js';

detectionCases(PROMETHEUS_BACKEND);
