/**
 * An in-memory NodePort: one Node whose conditions merge by type as a strategic-merge patch does,
 * every patch recorded, and failNext(n) to make the next n calls fail.
 */
import { ErrorCode, HealError } from '../../src/core/errors.js';
import type { NodeCondition, NodePort, NodeView } from '../../src/agent/node-port.js';

/** The fake and what it saw. */
export class FakeNodePort implements NodePort {
  conditions: NodeCondition[] = [];
  labels: Record<string, string> = {};
  allocatable: Record<string, string> = {};
  readonly patches: NodeCondition[][] = [];
  gets = 0;
  #failures = 0;
  /** Resolves each time a patch lands. */
  onPatch: (() => void) | undefined;

  failNext(n: number): void {
    this.#failures = n;
  }

  getNode(name: string): Promise<NodeView> {
    this.gets++;
    if (this.#failures > 0) return this.#fail(`get node ${name}`);
    return Promise.resolve({
      labels: this.labels,
      allocatable: this.allocatable,
      conditions: [...this.conditions],
    });
  }

  patchConditions(name: string, conditions: readonly NodeCondition[]): Promise<void> {
    if (this.#failures > 0) return this.#fail(`patch node ${name}`);
    this.patches.push([...conditions]);
    for (const c of conditions) {
      this.conditions = [...this.conditions.filter((x) => x.type !== c.type), c];
    }
    this.onPatch?.();
    return Promise.resolve();
  }

  /** The condition of `type` now on the Node. */
  condition(type: string): NodeCondition | undefined {
    return this.conditions.find((c) => c.type === type);
  }

  #fail(what: string): Promise<never> {
    this.#failures--;
    return Promise.reject(new HealError(ErrorCode.K8sUnavailable, `${what}: injected failure`));
  }
}
