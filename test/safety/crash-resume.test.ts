/**
 * Crash-safe resume: the daemon is killed at random points of its ladders (seeded, reproducible),
 * a fresh engine is built over the same SimCluster (the only durable state) and carries on. No
 * reboot or shutdown is ever repeated, no ticket entry is lost, every ticket parses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unitHash } from '../../src/sim/random.js';
import { countSteps } from '../../src/ticket/ticket.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  safetyConfig,
  settleSteps,
  startEngine,
  type EngineLife,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import type { ApiCall } from '../fixtures/safety/kill-switch.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { useSafetyFigures, type SafetyFigures } from './figures.js';

const figures = useSafetyFigures({ crash: 200 });
const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig({
  safety: { maxCordonedFraction: 0.75, stormMaxNewFaultyNodes: 50, stormMaxNewFaultyFraction: 1 },
});
/**
 * The faults each run spreads over its fleet (reboot, shutdown, repair and remedy ladders), with
 * the successful reboots their ladder allows in one ticket (what the uninterrupted daemon does).
 */
const FAULTS: readonly {
  condition: string;
  device?: string;
  persistence?: 'survives-reboot';
  rebootBudget: number;
}[] = [
  { condition: 'Xid79GPULost', device: '3', rebootBudget: 1 },
  { condition: 'GpuHung', persistence: 'survives-reboot', rebootBudget: 2 },
  { condition: 'GpfsDown', rebootBudget: 1 },
  { condition: 'KubeletFailedCreatePodContainer', rebootBudget: 0 },
  { condition: 'Xid48GPUMemoryDBE', device: '5', rebootBudget: 2 },
  { condition: 'GpuRowRemappingFailure', device: '1', rebootBudget: 0 },
  {
    condition: 'GpuPcieLinkDegraded',
    device: '2',
    persistence: 'survives-reboot',
    rebootBudget: 1,
  },
];

/** A seeded stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let i = 0;
  return () => unitHash(seed, i++);
}

/**
 * Tracks, per node, the most reboots (and shutdown Jobs) ever seen beyond what its tickets and its
 * ladder allow: more reboots than Reboot steps recorded Succeeded (or still Running), more
 * successful reboots in one ticket than the ladder's budget, more than one shutdown Job.
 */
class RebootAudit {
  readonly #sw: SafetyWorld;
  readonly #ledger: TicketLedger;
  readonly #budget: ReadonlyMap<string, number>;
  readonly #excess = new Map<string, { n: number; why: string }>();

  constructor(sw: SafetyWorld, ledger: TicketLedger, budget: ReadonlyMap<string, number>) {
    this.#sw = sw;
    this.#ledger = ledger;
    this.#budget = budget;
  }

  /** Checks every node now; `final` once nothing may be Running any more. */
  check(final: boolean): void {
    this.#ledger.scan();
    for (const n of this.#sw.names) {
      const done = this.#sw.world.cluster.rebootCount(n);
      const r = this.#ledger.reboots(n);
      const allowed = final ? r.succeeded : r.succeeded + r.running;
      const budget = this.#budget.get(n) ?? 0;
      const shutdowns = this.#ledger.jobsCreated('shutdown_node', n);
      this.#note(
        n,
        done - allowed,
        `${done} reboots, ${r.succeeded} recorded Succeeded, ${r.running} Running`,
      );
      this.#note(
        n,
        r.perTicketMax - budget,
        `${r.perTicketMax} reboots in one ticket, its ladder allows ${budget}`,
      );
      this.#note(n, shutdowns - 1, `${shutdowns} shutdown Jobs`);
    }
  }

  /** Extra reboots/shutdowns, per node, in words. */
  violations(): string[] {
    return [...this.#excess].map(([n, e]) => `${n}: ${e.why}`);
  }

  /** Total extra reboots/shutdowns. */
  get total(): number {
    let sum = 0;
    for (const e of this.#excess.values()) sum += e.n;
    return sum;
  }

  #note(node: string, n: number, why: string): void {
    if (n > (this.#excess.get(node)?.n ?? 0)) this.#excess.set(node, { n, why });
  }
}

/** One incarnation's kill plan: a virtual instant, and maybe an exact API call (before or after it). */
interface KillPlan {
  readonly afterMs: number;
  readonly atCall?: { index: number; phase: ApiCall['phase'] };
}

function planKill(rnd: () => number): KillPlan {
  const afterMs = Math.floor(15_000 + rnd() * 8 * MIN);
  if (rnd() < 0.5) return { afterMs };
  return {
    afterMs,
    atCall: { index: 1 + Math.floor(rnd() * 120), phase: rnd() < 0.5 ? 'before' : 'after' },
  };
}

/**
 * Runs one seeded fleet for `durationMs`, killing the daemon again and again at random points,
 * then lets a last incarnation finish undisturbed. Tallies kill points and duplicate reboots.
 */
async function crashRun(
  seed: number,
  f: SafetyFigures,
): Promise<{ kills: number; sw: SafetyWorld; ledger: TicketLedger; violations: string[] }> {
  const rnd = random(seed);
  const sw = await createSafetyWorld({ nodes: 8, seed, racksOf: 2 });
  const ledger = new TicketLedger(sw.world.cluster);
  const t0 = sw.clock.now();
  const budget = new Map<string, number>();
  FAULTS.forEach(({ rebootBudget, ...fault }, i) => {
    const node = sw.names[(i + seed) % sw.names.length] ?? '';
    budget.set(node, rebootBudget);
    sw.world.faults.injectFault({ ...fault, node, atMs: t0 + Math.floor(rnd() * 30 * MIN) });
  });
  const end = t0 + 3 * HOUR;
  const audit = new RebootAudit(sw, ledger, budget);
  let kills = 0;
  while (sw.clock.now() < end) {
    const plan = planKill(rnd);
    const at = plan.atCall;
    const life = startEngine(sw, {
      config: CONFIG,
      catalogue: CATALOGUE,
      ...(at === undefined
        ? {}
        : {
            hook: (call: ApiCall, ks: EngineLife['cluster']) => {
              if (call.index === at.index && call.phase === at.phase)
                ks.kill(`killed ${at.phase} ${call.method}`);
            },
          }),
    });
    const timer = sw.clock.sleep(plan.afterMs, life.cluster.signal).then(
      () => {
        life.cluster.kill('killed at a random instant');
      },
      () => undefined,
    );
    const interval = 10_000 + Math.floor(rnd() * 20_000);
    while (!life.cluster.dead && sw.clock.now() < end) {
      await life.cycle();
      audit.check(false);
      await sw.clock.advance(interval);
    }
    if (!life.cluster.dead) break;
    await timer;
    await life.engine.controller.idle();
    kills++;
    await sw.clock.advance(Math.floor(rnd() * 3 * MIN));
  }
  const last = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
  for (let i = 0; i < (2 * HOUR) / 30_000; i++) {
    await last.cycle();
    await sw.clock.advance(30_000);
  }
  await settleSteps(sw, last);
  audit.check(true);
  f.tried('crash', kills);
  f.bad('crash', audit.total, `seed ${seed}: ${audit.violations().join('; ')}`);
  return { kills, sw, ledger, violations: audit.violations() };
}

describe('crash-safe resume: the daemon killed at random points of its ladders', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
    it(`seed ${seed}: no duplicate reboot or shutdown, no ticket entry lost, every ladder ends`, async () => {
      const { kills, sw, ledger, violations } = await crashRun(seed, figures);
      assert.ok(kills >= 20, `only ${kills} kill points`);
      assert.deepEqual(ledger.problems, [], 'no ticket entry lost or changed, every ticket parses');
      assert.ok(ledger.ticketWrites > 20, 'tickets were written');
      assert.deepEqual(
        violations,
        [],
        'no reboot or shutdown beyond what tickets and ladders allow',
      );
      for (const n of sw.names) {
        const t = await sw.ticket(n);
        if (t === null) continue;
        assert.ok(
          !t.workflows.some((w) => w.status === 'Running'),
          `${n}: a step is still Running`,
        );
        if (countSteps(t, 'HandToHuman', 'Succeeded') > 0) {
          assert.equal(
            t.status,
            'assigned',
            `${n}: handed to a human, so the ticket must be assigned`,
          );
        }
        assert.ok(
          ['resolved', 'closed', 'assigned'].includes(t.status),
          `${n}: ticket ${t.status} after the run\n${JSON.stringify(t, null, 1)}`,
        );
      }
    });
  }
});
