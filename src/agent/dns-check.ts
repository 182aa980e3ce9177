/**
 * DnsTestFailed: the pod resolves the configured names through the cluster DNS (its own
 * /etc/resolv.conf, or `dnsServers`) with c-ares and a deadline; the check fails when a name does
 * not resolve. No names configured: cannot check.
 */
import { Resolver } from 'node:dns/promises';
import { checked, nothingChecked, problem, type Check } from './check.js';

/** Conditions this check reports. */
export const DNS_CHECKS = ['DnsTestFailed'] as const;

/** Resolves one name to addresses; throws when it cannot. */
export type Resolve = (name: string) => Promise<readonly string[]>;

/** Settings of the DNS check. */
export interface DnsCheckOptions {
  readonly names: readonly string[];
  readonly intervalMs: number;
  readonly resolve: Resolve;
}

/** The c-ares resolver with a per-try timeout and the given servers (empty: resolv.conf). */
export function createResolve(servers: readonly string[], timeoutMs: number): Resolve {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return (name) => resolver.resolve4(name);
}

/** Builds the DNS check. */
export function createDnsCheck(opts: DnsCheckOptions): Check {
  return {
    name: 'dns',
    intervalMs: opts.intervalMs,
    covers: DNS_CHECKS,
    async run() {
      if (opts.names.length === 0) return nothingChecked(DNS_CHECKS, 'no DNS test name configured');
      let failed = 0;
      for (const name of opts.names) {
        try {
          if ((await opts.resolve(name)).length === 0) failed++;
        } catch {
          failed++;
        }
      }
      return { problems: [problem('DnsTestFailed', failed)], available: checked(DNS_CHECKS) };
    },
  };
}
