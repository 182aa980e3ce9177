/**
 * An in-memory ToolRunner for unit tests: answers each run from a handler, records the calls.
 * Outputs come from the host fixtures (fixture()).
 */
import type { ToolResult, ToolRunner, ToolSpec } from '../../src/agent/tool-runner.js';
import { fixture } from './fake-host.js';

/** A call the runner received. */
export interface ToolCall {
  readonly tool: ToolSpec;
  readonly args: readonly string[];
}

/** The runner and its calls. */
export function fakeRunner(
  handler: (command: string, args: readonly string[]) => ToolResult,
): ToolRunner & { calls: ToolCall[] } {
  const calls: ToolCall[] = [];
  return {
    calls,
    run(tool, args) {
      calls.push({ tool, args });
      return Promise.resolve(handler(tool.command, args));
    },
  };
}

/** An exit with the given fixture files as stdout / stderr. */
export function exited(stdout?: string, code = 0, stderr?: string): ToolResult {
  return {
    kind: 'exited',
    code,
    stdout: stdout === undefined ? '' : fixture(stdout),
    stderr: stderr === undefined ? '' : fixture(stderr),
  };
}

/** The tool is not on this host. */
export const MISSING: ToolResult = { kind: 'missing', detail: 'not found' };
/** The tool did not answer. */
export const TIMEOUT: ToolResult = { kind: 'timeout', detail: 'no answer' };
