import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/**
 * Scrape health, read from the series Prometheus makes for every target (`up`,
 * `scrape_samples_scraped`). System domain, after system.ts in the catalogue order.
 */
export const SCRAPE_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'ExporterUnparsable',
    domain: 'System',
    description:
      'An exporter on the node answers its scrape with text Prometheus cannot parse (`up` is 0 although ' +
      'samples were read), e.g. dcgm-exporter printing `ERROR - FAILED TO CONVERT TO STRING` for a field ' +
      'it cannot read. Every scrape fails, so every rule reading that exporter is stale on the node (its ' +
      'last samples stay visible for 5 minutes, then vanish). Restarting the exporter cannot fix it (its ' +
      'version or field list must change), so nothing is restarted: it is recorded for a human, and ' +
      'GpuMetricsHang does not restart dcgm-exporter on the node meanwhile. id = scrape job.',
    signal: 'prometheus',
    expr: 'max by (node, job) ((up == 0) and on(node, job) (scrape_samples_scraped > 0))',
    deviceLabel: 'job',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'The target is scraped successfully again for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: null,
    fault: {
      defaultDevice: 'dcgm-exporter',
      series: [
        { metric: 'up', labels: { job: '{device}' }, value: 0 },
        { metric: 'scrape_samples_scraped', labels: { job: '{device}' }, value: 169 },
      ],
    },
  },
];
