/**
 * The commands of `kubectl aegis` (also `aegis ctl`): read the fleet's state out of the cluster and
 * make the operator's writes, with the caller's own kubeconfig and RBAC.
 *
 * Reads: status, tickets, incidents, ticket NODE, explain NODE. Writes, each ONE request guarded by the
 * resourceVersion that was read (a 409 is reported, never retried): takeover, release, ack,
 * approve, dismiss, pause [NODE], resume [NODE] (node annotations: the ticket and aegis.io/pause),
 * pause, resume and breaker reset without a node (the ConfigMap aegis-control). Every ticket write
 * appends the caller, as the apiserver knows them (SelfSubjectReview), to the ticket's operatorLog.
 *
 * Errors are HealErrors: INVALID_INPUT (usage, exit 2), OPERATOR_REFUSED, K8S_FORBIDDEN,
 * K8S_CONFLICT, K8S_NOT_FOUND, K8S_UNAVAILABLE (exit 1).
 */
import { Option, type Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { parse } from 'yaml';
import { ConfigSchema, type Config } from '../config/schema.js';
import { parseDurationMs } from '../core/duration.js';
import { ErrorCode, HealError, errorMessage, isHealError } from '../core/errors.js';
import { CONTROL_CONFIGMAP, isValidNodeName } from '../core/types.js';
import {
  defaultPriorityTable,
  parsePriorityTable,
  type PriorityTable,
} from '../priority/priority-table.js';
import { isOpen } from '../ticket/ticket.js';
import {
  isNoChange,
  planFleetAction,
  planNodeAction,
  type FleetAction,
  type NodeAction,
} from './actions.js';
import { painter, structured, wantColour, type Paint } from './format.js';
import type { ConnectOptions, OperatorCluster } from './kube-client.js';
import {
  explain,
  incidentsOf,
  summarise,
  toControls,
  viewNode,
  type Controls,
  type Leader,
  type SiteContext,
  type Sourced,
} from './model.js';
import {
  renderExplain,
  renderIncidents,
  renderStatus,
  renderTicket,
  renderTickets,
  stateLegend,
} from './render.js';

/** The controller's namespace when --namespace is not given (deploy/aegis). */
export const DEFAULT_NAMESPACE = 'monitoring';
/** ConfigMaps of deploy/aegis that `status` and `explain` read when allowed. */
export const CONFIG_CONFIGMAP = 'aegis-config';
export const PRIORITY_CONFIGMAP = 'aegis-priority';
const RBAC_FILE = 'deploy/aegis/operator-rbac.yaml';
/** Incident records (ConfigMaps) `incidents` tries to read for their summary. */
const INCIDENT_RECORDS_READ = 20;

/** What the commands use from the outside world (tests replace parts). */
export interface OperatorDeps {
  readonly connect: (options: ConnectOptions) => Promise<OperatorCluster>;
  readonly now: () => number;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal (colour). */
  readonly isTTY: boolean | undefined;
}

/** The real world. */
export const PROCESS_DEPS: OperatorDeps = {
  // Loaded on first use: `aegis` commands other than `ctl` never load the Kubernetes client.
  connect: async (options) => (await import('./kube-client.js')).connectKube(options),
  now: () => Date.now(),
  env: process.env,
  isTTY: process.stdout.isTTY,
};

interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  requestTimeout?: string;
}

/** One command's run: the cluster, where the controller lives, how to print. */
interface Session {
  readonly cluster: OperatorCluster;
  readonly namespace: string;
  readonly nowMs: number;
  readonly paint: Paint;
  out(text: string): void;
  err(text: string): void;
}

async function open(cmd: CommandUnknownOpts, deps: OperatorDeps): Promise<Session> {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  const timeout =
    g.requestTimeout === undefined
      ? undefined
      : parseDurationMs(g.requestTimeout, '--request-timeout');
  if (timeout === 0)
    throw new HealError(ErrorCode.InvalidInput, '--request-timeout: must be above 0');
  const cluster = await deps.connect({
    env: deps.env,
    ...(g.kubeconfig === undefined ? {} : { kubeconfig: g.kubeconfig }),
    ...(g.context === undefined ? {} : { context: g.context }),
    ...(timeout === undefined ? {} : { requestTimeoutMs: timeout }),
  });
  const output = cmd.configureOutput();
  return {
    cluster,
    namespace: g.namespace ?? DEFAULT_NAMESPACE,
    nowMs: deps.now(),
    paint: painter(wantColour(deps.isTTY, deps.env)),
    out: (text) => {
      if (output.writeOut === undefined) process.stdout.write(text);
      else output.writeOut(text);
    },
    err: (text) => {
      if (output.writeErr === undefined) process.stderr.write(text);
      else output.writeErr(text);
    },
  };
}

/** A node name argument, checked (INVALID_INPUT, exit 2). */
function nodeArg(name: string): string {
  if (!isValidNodeName(name)) {
    throw new HealError(ErrorCode.InvalidInput, `"${name}" is not a valid node name`);
  }
  return name;
}

/** The error with what to do added: RBAC for a 403, what a 409 means, which node is missing. */
function explainError(
  err: unknown,
  what: { write: boolean; node?: string; configMap?: string },
): never {
  if (isHealError(err, ErrorCode.K8sForbidden)) {
    throw new HealError(
      ErrorCode.K8sForbidden,
      `${err.message}; ${what.write ? `this write needs the ClusterRole aegis-operator (${RBAC_FILE})` : `reading needs the ClusterRole aegis-viewer (${RBAC_FILE})`}`,
      { cause: err },
    );
  }
  if (isHealError(err, ErrorCode.K8sConflict)) {
    throw new HealError(
      ErrorCode.K8sConflict,
      what.configMap !== undefined
        ? `ConfigMap ${what.configMap} changed since it was read; run the command again`
        : `node ${what.node ?? '?'}: the ticket changed since it was read; run the command again`,
      { cause: err },
    );
  }
  if (isHealError(err, ErrorCode.K8sNotFound) && what.node !== undefined) {
    throw new HealError(ErrorCode.K8sNotFound, `node ${what.node} not found`, { cause: err });
  }
  throw err;
}

async function guarded<T>(
  work: () => Promise<T>,
  what: { write: boolean; node?: string; configMap?: string },
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    explainError(err, what);
  }
}

/** A read that may be forbidden or missing: the fallback and why. */
async function readOr<T>(
  what: string,
  read: () => Promise<T | null>,
  fallback: T,
  fallbackName: string,
): Promise<Sourced<T>> {
  try {
    const value = await read();
    if (value === null)
      return { value: fallback, source: `${fallbackName} (${what} not found)`, fromCluster: false };
    return { value, source: what, fromCluster: true };
  } catch (err) {
    const why = isHealError(err, ErrorCode.K8sForbidden)
      ? 'not readable: forbidden'
      : isHealError(err, ErrorCode.K8sConflict) || isHealError(err, ErrorCode.K8sNotFound)
        ? errorMessage(err)
        : isHealError(err)
          ? errorMessage(err)
          : `unreadable: ${errorMessage(err)}`;
    return { value: fallback, source: `${fallbackName} (${what} ${why})`, fromCluster: false };
  }
}

/** The controller's config, priority table, controls and leader, as far as the caller may read. */
async function siteContext(s: Session): Promise<SiteContext> {
  const ns = s.namespace;
  const defaults = ConfigSchema.parse({});
  const [config, priority, controls] = await Promise.all([
    readOr<Config>(
      `ConfigMap ${ns}/${CONFIG_CONFIGMAP}`,
      async () => {
        const cm = await s.cluster.readConfigMap(ns, CONFIG_CONFIGMAP);
        if (cm === null) return null;
        const text = cm.data['config.yaml'];
        if (text === undefined) throw new Error('has no config.yaml');
        const parsed = ConfigSchema.safeParse(parse(text));
        if (!parsed.success) throw new Error("config.yaml does not match this version's schema");
        return parsed.data;
      },
      defaults,
      'built-in defaults',
    ),
    readOr<PriorityTable>(
      `ConfigMap ${ns}/${PRIORITY_CONFIGMAP}`,
      async () => {
        const cm = await s.cluster.readConfigMap(ns, PRIORITY_CONFIGMAP);
        if (cm === null) return null;
        const text = cm.data['priority.conf'];
        if (text === undefined) throw new Error('has no priority.conf');
        return parsePriorityTable(text, { source: `${PRIORITY_CONFIGMAP}/priority.conf` });
      },
      defaultPriorityTable(),
      'catalogue defaults',
    ),
    readOr<Controls>(
      `ConfigMap ${ns}/${CONTROL_CONFIGMAP}`,
      async () => {
        const cm = await s.cluster.readConfigMap(ns, CONTROL_CONFIGMAP);
        return cm === null ? null : toControls(cm.data);
      },
      toControls(null),
      'no operator controls',
    ),
  ]);
  const leaseName = config.value.leaderElection.leaseName;
  let leader: Leader;
  try {
    const lease = await s.cluster.readLease(ns, leaseName);
    if (lease === null)
      leader = { unknown: `no Lease ${ns}/${leaseName}: is the controller deployed?` };
    else {
      const ago = lease.renewTimeMs === undefined ? undefined : s.nowMs - lease.renewTimeMs;
      leader = {
        ...(lease.holder === undefined ? {} : { holder: lease.holder }),
        ...(ago === undefined ? {} : { renewedAgoMs: ago }),
        ...(ago !== undefined && lease.durationSeconds !== undefined
          ? { expired: ago > lease.durationSeconds * 1000 }
          : {}),
      };
    }
  } catch (err) {
    leader = {
      unknown: isHealError(err, ErrorCode.K8sForbidden)
        ? `Lease ${ns}/${leaseName} not readable: forbidden`
        : errorMessage(err),
    };
  }
  return { namespace: ns, config, priority, controls, leader, nowMs: s.nowMs };
}

type Fmt = 'json' | 'yaml';
const structuredOption = (): Option<'-o, --output <format>', undefined, undefined, Fmt> =>
  new Option('-o, --output <format>', 'json or yaml').choices(['json', 'yaml'] as const);

/**
 * Adds the operator commands and their global options (--kubeconfig, --context, -n/--namespace,
 * --request-timeout) to `parent`.
 */
export function addOperatorCommands(parent: Command, deps: OperatorDeps = PROCESS_DEPS): void {
  parent
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context to use')
    .option(
      '-n, --namespace <namespace>',
      `namespace of the Aegis controller (its ConfigMaps and Lease; default ${DEFAULT_NAMESPACE})`,
    )
    .option('--request-timeout <duration>', 'deadline of each API request (default 30s)');

  parent
    .command('status')
    .description(
      'fleet summary: nodes by state, open tickets, steps running/held, breaker and budgets',
    )
    .addOption(structuredOption())
    .addHelpText('after', `\nNode states (the first that applies):\n${stateLegend()}\n`)
    .action(async (opts, cmd) => {
      const s = await open(cmd, deps);
      const [nodes, site] = await Promise.all([
        guarded(() => s.cluster.listNodes(), { write: false }),
        siteContext(s),
      ]);
      const views = nodes.map(viewNode).sort((a, b) => a.node.name.localeCompare(b.node.name));
      const summary = summarise(views, site, {
        context: s.cluster.context,
        server: s.cluster.server,
      });
      s.out(
        opts.output === undefined
          ? renderStatus(summary, s.nowMs, s.paint)
          : structured({ apiVersion: 'aegis.io/v1', kind: 'FleetStatus', ...summary }, opts.output),
      );
    });

  parent
    .command('tickets')
    .description('one line per open ticket (every ticket with --all)')
    .option('-A, --all', 'include resolved and closed tickets')
    .addOption(
      new Option('-o, --output <format>', 'wide, json or yaml').choices([
        'wide',
        'json',
        'yaml',
      ] as const),
    )
    .action(async (opts, cmd) => {
      const s = await open(cmd, deps);
      const nodes = await guarded(() => s.cluster.listNodes(), { write: false });
      const views = nodes
        .map(viewNode)
        .filter(
          (v) =>
            v.corrupt !== undefined ||
            (v.ticket !== null && (opts.all === true || isOpen(v.ticket))),
        )
        .sort((a, b) => a.node.name.localeCompare(b.node.name));
      if (opts.output === 'json' || opts.output === 'yaml') {
        const items = views.map((v) => ({
          node: v.node.name,
          state: v.state,
          ...(v.corrupt === undefined ? { ticket: v.ticket } : { corrupt: v.corrupt }),
        }));
        s.out(structured({ apiVersion: 'aegis.io/v1', kind: 'TicketList', items }, opts.output));
        return;
      }
      if (views.length === 0) {
        s.err(opts.all === true ? 'No tickets found.\n' : 'No open tickets found.\n');
        return;
      }
      const table =
        opts.output === 'wide' ? (await siteContext(s)).priority.value : defaultPriorityTable();
      s.out(renderTickets(views, opts.output === 'wide', table, s.nowMs, s.paint));
    });

  parent
    .command('incidents')
    .description(
      'domain incidents (a leaf switch, rack, PDU or NVLink domain failing): open ones (every one with --all)',
    )
    .option('-A, --all', 'include released incidents')
    .addOption(
      new Option('-o, --output <format>', 'wide, json or yaml').choices([
        'wide',
        'json',
        'yaml',
      ] as const),
    )
    .action(async (opts, cmd) => {
      const s = await open(cmd, deps);
      const nodes = await guarded(() => s.cluster.listNodes(), { write: false });
      const found = incidentsOf(nodes.map(viewNode)).filter(
        (i) => opts.all === true || i.status === 'open',
      );
      // The record's summary where the caller may read it (the viewer role may not: it is shown
      // without). At most a screenful of reads.
      const list = await Promise.all(
        found.map(async (i, n) => {
          if (n >= INCIDENT_RECORDS_READ) return i;
          try {
            const cm = await s.cluster.readConfigMap(s.namespace, i.name);
            const summary = cm?.data['summary'];
            return summary === undefined ? i : { ...i, summary };
          } catch {
            return i;
          }
        }),
      );
      if (opts.output === 'json' || opts.output === 'yaml') {
        s.out(
          structured({ apiVersion: 'aegis.io/v1', kind: 'IncidentList', items: list }, opts.output),
        );
        return;
      }
      if (list.length === 0) {
        s.err(opts.all === true ? 'No domain incidents found.\n' : 'No open domain incidents.\n');
        return;
      }
      s.out(renderIncidents(list, opts.output === 'wide', s.nowMs, s.paint));
    });

  parent
    .command('ticket')
    .description("a node's whole ticket: conditions, every step, history, approval, operator log")
    .argument('<node>', 'node name', nodeArg)
    .addOption(structuredOption())
    .action(async (name, opts, cmd) => {
      const s = await open(cmd, deps);
      const node = await guarded(() => s.cluster.getNode(name), { write: false, node: name });
      const view = viewNode(node);
      if (view.corrupt !== undefined) {
        throw new HealError(ErrorCode.TicketCorrupt, view.corrupt);
      }
      if (view.ticket === null) {
        throw new HealError(
          ErrorCode.K8sNotFound,
          `node ${name} has no ticket: Aegis has not acted on it`,
        );
      }
      s.out(
        opts.output === undefined
          ? renderTicket(name, view.ticket, s.nowMs, s.paint)
          : structured(
              { apiVersion: 'aegis.io/v1', kind: 'Ticket', node: name, ticket: view.ticket },
              opts.output,
            ),
      );
    });

  parent
    .command('explain')
    .description(
      'why a node is in its state: conditions and priorities, SOP, what holds the next step',
    )
    .argument('<node>', 'node name', nodeArg)
    .addOption(structuredOption())
    .action(async (name, opts, cmd) => {
      const s = await open(cmd, deps);
      const [node, site] = await Promise.all([
        guarded(() => s.cluster.getNode(name), { write: false, node: name }),
        siteContext(s),
      ]);
      const e = explain(viewNode(node), site);
      s.out(
        opts.output === undefined
          ? renderExplain(e, s.nowMs, s.paint)
          : structured({ apiVersion: 'aegis.io/v1', kind: 'Explanation', ...e }, opts.output),
      );
    });

  const nodeWrite = (action: NodeAction, description: string) =>
    parent.command(action).description(description).argument('<node>', 'node name', nodeArg);

  nodeWrite('takeover', 'a human takes the ticket over: Aegis stops acting on the node')
    .addOption(new Option('--as <name>', 'who owns the ticket from now (default: you)'))
    .action(async (name, opts, cmd) => {
      await runNodeWrite(cmd, deps, 'takeover', name, opts.as);
    });
  nodeWrite('release', 'hand the ticket back to Aegis').action(async (name, _o, cmd) => {
    await runNodeWrite(cmd, deps, 'release', name);
  });
  nodeWrite(
    'ack',
    'acknowledge and close the ticket (Aegis never re-opens this occurrence)',
  ).action(async (name, _o, cmd) => {
    await runNodeWrite(cmd, deps, 'ack', name);
  });
  nodeWrite('approve', 'approve the step waiting for approval').action(async (name, _o, cmd) => {
    await runNodeWrite(cmd, deps, 'approve', name);
  });
  nodeWrite('dismiss', 'dismiss the step waiting for approval (the node goes to a human)').action(
    async (name, _o, cmd) => {
      await runNodeWrite(cmd, deps, 'dismiss', name);
    },
  );
  for (const action of ['pause', 'resume'] as const) {
    parent
      .command(action)
      .description(
        action === 'pause'
          ? 'pause one node (aegis.io/pause=true), or without NODE all automation (aegis-control)'
          : 'resume one node, or without NODE all automation',
      )
      .argument('[node]', 'node name', nodeArg)
      .action(async (name, _o, cmd) => {
        if (name === undefined) await runFleetWrite(cmd, deps, action);
        else await runNodeWrite(cmd, deps, action, name);
      });
  }
  parent
    .command('breaker')
    .description('the storm breaker')
    .command('reset')
    .description('reset the storm breaker: steps it holds may run again')
    .action(async (_o, cmd) => {
      await runFleetWrite(cmd, deps, 'breaker-reset');
    });
}

async function runNodeWrite(
  cmd: CommandUnknownOpts,
  deps: OperatorDeps,
  action: NodeAction,
  name: string,
  owner?: string,
): Promise<void> {
  const s = await open(cmd, deps);
  const who = (await guarded(() => s.cluster.whoami(), { write: false })).username;
  const node = await guarded(() => s.cluster.getNode(name), { write: false, node: name });
  const plan = planNodeAction(action, viewNode(node), who, deps.now(), owner);
  if (isNoChange(plan)) {
    s.out(`${plan.unchanged}\n`);
    return;
  }
  await guarded(
    () => s.cluster.patchNodeAnnotations(name, node.resourceVersion, plan.annotations),
    {
      write: true,
      node: name,
    },
  );
  if (plan.warning !== undefined) s.err(`${plan.warning}\n`);
  s.out(`${plan.done}\n`);
}

async function runFleetWrite(
  cmd: CommandUnknownOpts,
  deps: OperatorDeps,
  action: FleetAction,
): Promise<void> {
  const s = await open(cmd, deps);
  const where = `${s.namespace}/${CONTROL_CONFIGMAP}`;
  const who = (await guarded(() => s.cluster.whoami(), { write: false })).username;
  const cm = await guarded(() => s.cluster.readConfigMap(s.namespace, CONTROL_CONFIGMAP), {
    write: false,
    configMap: where,
  });
  const plan = planFleetAction(
    action,
    cm?.data ?? null,
    toControls(cm?.data ?? null),
    who,
    deps.now(),
  );
  if (isNoChange(plan)) {
    s.out(`${plan.unchanged}\n`);
    return;
  }
  try {
    await s.cluster.writeConfigMap(s.namespace, CONTROL_CONFIGMAP, plan.data, cm?.resourceVersion);
  } catch (err) {
    if (cm === null && isHealError(err, ErrorCode.K8sForbidden)) {
      // aegis-operator may update the ConfigMap, not create it: deploy/aegis ships it.
      throw new HealError(
        ErrorCode.K8sForbidden,
        `ConfigMap ${where} does not exist and you may not create it: apply deploy/aegis, which ships it (${errorMessage(err)})`,
        { cause: err },
      );
    }
    explainError(err, { write: true, configMap: where });
  }
  s.out(`${plan.done} (ConfigMap ${where})\n`);
}

/** `aegis ctl …`: the same commands under the aegis CLI. */
export function registerCtlCommand(program: Command): void {
  addOperatorCommands(
    program
      .command('ctl')
      .description(
        'operate a running Aegis: the commands of `kubectl aegis` (status, tickets, approve…)',
      ),
  );
}
