/**
 * The simulated fleet's BMCs: every node's BMC answers on any address, checks the credentials it
 * is given against the ones set here, and powers the simulated node off and on (a power-on boots
 * it with a new boot id; its pods are gone at the power-off). Failures a test wants (unreachable,
 * wrong password, no answer) are set per node.
 */
import { ErrorCode } from '../core/errors.js';
import { bmcError, type BmcConnector, type BmcClient, type PowerState } from '../bmc/types.js';
import { describeTarget } from '../bmc/select.js';
import type { SimCluster } from './sim-cluster.js';

/** How a simulated BMC misbehaves. */
export type SimBmcFailure = 'unreachable' | 'timeout' | 'refuse-power-off' | 'stuck-on';

/** The simulated BMCs of a SimCluster. */
export class SimBmcs {
  readonly #cluster: SimCluster;
  readonly #credentials: { username: string; password: string };
  readonly #failures = new Map<string, SimBmcFailure>();
  readonly #calls: { node: string; op: string }[] = [];

  constructor(cluster: SimCluster, credentials: { username: string; password: string }) {
    this.#cluster = cluster;
    this.#credentials = credentials;
  }

  /** Makes the node's BMC misbehave (undefined: healthy again). */
  fail(node: string, failure: SimBmcFailure | undefined): void {
    if (failure === undefined) this.#failures.delete(node);
    else this.#failures.set(node, failure);
  }

  /** Every request the BMCs received, in order. */
  calls(node?: string): readonly { node: string; op: string }[] {
    return node === undefined ? this.#calls : this.#calls.filter((c) => c.node === node);
  }

  /** A connector for both protocols (the simulation does not tell them apart). */
  connector(): BmcConnector {
    const cluster = this.#cluster;
    const failures = this.#failures;
    return (target, credentials): BmcClient => {
      const node = target.node;
      const describe = describeTarget(target);
      const enter = async (op: string): Promise<void> => {
        await Promise.resolve();
        this.#calls.push({ node, op });
        const failure = this.#failures.get(node);
        if (failure === 'unreachable')
          throw bmcError(ErrorCode.BmcUnreachable, `${describe}: no answer (connection refused)`);
        if (failure === 'timeout')
          throw bmcError(ErrorCode.BmcTimeout, `${describe}: "${op}" got no answer within 30 s`);
        if (
          credentials.username !== this.#credentials.username ||
          credentials.password !== this.#credentials.password
        )
          throw bmcError(
            ErrorCode.BmcAuthFailed,
            `${describe}: the BMC refused the credentials for "${op}" (RAKP 2 HMAC is invalid)`,
          );
        if (failure === 'refuse-power-off' && op === 'power-off')
          throw bmcError(
            ErrorCode.BmcError,
            `${describe}: "${op}" failed: Insufficient privilege level`,
          );
      };
      const state = (): PowerState => (cluster.powerState(node) === 'off' ? 'Off' : 'On');
      return {
        describe,
        async powerState() {
          await enter('power-status');
          return state();
        },
        async powerOff() {
          await enter('power-off');
          if (failures.get(node) !== 'stuck-on') cluster.bmcPowerOff(node);
        },
        async powerOn() {
          await enter('power-on');
          cluster.bmcPowerOn(node);
        },
        async powerCycle() {
          await enter('power-cycle');
          cluster.bmcPowerOff(node);
          cluster.bmcPowerOn(node);
        },
      };
    };
  }
}
