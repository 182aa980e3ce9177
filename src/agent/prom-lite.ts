/**
 * prom-client's Registry and Gauge, loaded from their own modules. `import 'prom-client'` loads
 * every metric type, the cluster aggregator and the default collectors: +11.5 MB of RSS, a sixth
 * of the agent's 64 MB budget; these two files cost 0.4 MB. The types come from the package's
 * declarations, so the API is exactly prom-client's.
 */
import { createRequire } from 'node:module';
import type { Gauge as GaugeType, Registry as RegistryType } from 'prom-client';

const require = createRequire(import.meta.url);

/** prom-client's Registry class. */
export const Registry = require('prom-client/lib/registry') as typeof RegistryType;
/** prom-client's Gauge class. */
export const Gauge = require('prom-client/lib/gauge') as typeof GaugeType;

/** A registry instance. */
export type PromRegistry = RegistryType;
/** A gauge instance with the given label names. */
export type PromGauge<L extends string> = GaugeType<L>;
