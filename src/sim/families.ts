/**
 * The baseline metric families of a healthy fleet, one table per exporter under families/.
 * Names, types, labels and healthy values follow the real exporters (see
 * /work/shared/reference/ecosystem.md §C.3 and the captures): XID 0, GPU ~40 °C, memory ~45 °C,
 * ECC and error counters 0, persistence 1, IB state 4 / phys 5 at 5e10 B/s, BMC states 0 (drive
 * fault 1, inverted), GPFS `active` and HEALTHY one-hot, kube-state-metrics Ready=true.
 */
import {
  ALL_ROLES,
  exporterOf,
  jobOf,
  type Exporter,
  type Family,
  type FamilyDef,
  type Variants,
} from './family.js';
import { DCGM_FAMILIES } from './families/dcgm.js';
import { GPFS_FAMILIES } from './families/gpfs.js';
import { NODE, ONE, gauge } from './families/helpers.js';
import { IPMI_FAMILIES } from './families/ipmi.js';
import { ksmFamilies } from './families/kube-state-metrics.js';
import { NODE_EXPORTER_FAMILIES } from './families/node-exporter.js';
import { NODECHECK_FAMILIES, SICHEK_FAMILIES } from './families/nodecheck.js';
import { NPD_FAMILIES } from './families/npd.js';

/** Exporters Prometheus scrapes per node; each gets an `up` series (1 up, 0 down). */
export const SCRAPED_EXPORTERS: readonly Exporter[] = ['dcgm', 'node', 'ipmi', 'gpfs', 'nodecheck'];
const UP_VARIANTS: Variants = SCRAPED_EXPORTERS.map(() => ({}));
const UP: FamilyDef = gauge('up', 'Whether the target was scraped successfully.', NODE, ONE, {
  roles: ALL_ROLES,
  variants: () => UP_VARIANTS,
  upOf: (variant) => SCRAPED_EXPORTERS[variant] ?? 'node',
});

/** Every baseline family, indexed; call once per store (KSM caches live in the result). */
export function buildFamilies(): readonly Family[] {
  const defs = [
    ...DCGM_FAMILIES,
    ...NODE_EXPORTER_FAMILIES,
    ...ksmFamilies(),
    ...IPMI_FAMILIES,
    ...GPFS_FAMILIES,
    ...SICHEK_FAMILIES,
    ...NODECHECK_FAMILIES,
    ...NPD_FAMILIES,
    UP,
  ];
  return defs.map((def, index) => ({
    ...def,
    index,
    exporter: exporterOf(def.name),
    job: jobOf(def.name),
  }));
}
