/**
 * DnsTestFailed: the pod resolves the configured names through the cluster DNS (its own
 * /etc/resolv.conf, or `dnsServers`) with c-ares and a deadline; the check fails when a name does
 * not resolve. No names configured: cannot check.
 */
import { Resolver } from 'node:dns/promises';
import { checked, nothingChecked, problem, type Check } from './check.js';

/** Conditions this check reports. */
export const DNS_CHECKS = ['DnsTestFailed'] as const;

/** Resolves one name to addresses; throws when it cannot (or when `signal` aborts). */
export type Resolve = (name: string, signal: AbortSignal) => Promise<readonly string[]>;

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
  return async (name, signal) => {
    const cancel = (): void => {
      resolver.cancel();
    };
    signal.addEventListener('abort', cancel, { once: true });
    try {
      return await resolver.resolve4(name);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  };
}

/** Builds the DNS check. */
export function createDnsCheck(opts: DnsCheckOptions): Check {
  return {
    name: 'dns',
    intervalMs: opts.intervalMs,
    covers: DNS_CHECKS,
    async run(signal) {
      if (opts.names.length === 0) return nothingChecked(DNS_CHECKS, 'no DNS test name configured');
      let failed = 0;
      for (const name of opts.names) {
        try {
          if ((await opts.resolve(name, signal)).length === 0) failed++;
        } catch {
          failed++;
        }
      }
      return { problems: [problem('DnsTestFailed', failed)], available: checked(DNS_CHECKS) };
    },
  };
}
