import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric Aegis exposes, created in one place and injected (never a global registry).
 * docs/metrics.md has a row per metric; a test checks the two agree.
 */
export function createMetrics(registry: Registry = new Registry()) {
  const r = [registry];
  return {
    registry,
    sopTotal: new Counter({
      name: 'aegis_sop_total',
      help: 'SOP step executions by SOP, action and result status.',
      labelNames: ['sop', 'action', 'status'] as const,
      registers: r,
    }),
    selfhealSeconds: new Histogram({
      name: 'aegis_selfheal_seconds',
      help: 'Time from detection (ticket opened) to resolution, by condition.',
      labelNames: ['condition'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
      registers: r,
    }),
    ticketOpen: new Gauge({
      name: 'aegis_ticket_open_total',
      help: 'Tickets currently open (created, assigned or resolving).',
      registers: r,
    }),
    ticketsByStatus: new Gauge({
      name: 'aegis_ticket_status',
      help: 'Tickets on nodes by status.',
      labelNames: ['status'] as const,
      registers: r,
    }),
    conditionGauge: new Gauge({
      name: 'aegis_condition_gauge',
      help: 'Nodes on which each condition is active.',
      labelNames: ['condition', 'domain'] as const,
      registers: r,
    }),
    conditionRaised: new Counter({
      name: 'aegis_condition_raised_total',
      help: 'Condition raise edges, by condition.',
      labelNames: ['condition'] as const,
      registers: r,
    }),
    stepSeconds: new Histogram({
      name: 'aegis_sop_step_duration_seconds',
      help: 'Wall time of one SOP step, by action and status.',
      labelNames: ['action', 'status'] as const,
      buckets: [0.05, 0.5, 5, 30, 120, 600, 1800, 3600],
      registers: r,
    }),
    firstActionSeconds: new Histogram({
      name: 'aegis_first_action_seconds',
      help: 'Time from a condition being raised to the first SOP step on its node.',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: r,
    }),
    cycleSeconds: new Histogram({
      name: 'aegis_inspect_cycle_seconds',
      help: 'Duration of one inspection cycle (queries and engine work).',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: r,
    }),
    queries: new Counter({
      name: 'aegis_inspect_queries_total',
      help: 'PromQL queries issued by the inspector, by result.',
      labelNames: ['result'] as const,
      registers: r,
    }),
    metricsSourceUp: new Gauge({
      name: 'aegis_metrics_source_up',
      help: '1 when every query of the last cycle succeeded, 0 otherwise.',
      registers: r,
    }),
    staleSignals: new Gauge({
      name: 'aegis_signal_stale_nodes',
      help: 'Nodes whose signal (exporter) is stale or missing, by signal.',
      labelNames: ['signal'] as const,
      registers: r,
    }),
    staleRules: new Gauge({
      name: 'aegis_rule_stale',
      help: '1 when the rule query failed in the last cycle.',
      labelNames: ['condition'] as const,
      registers: r,
    }),
    held: new Counter({
      name: 'aegis_safety_held_total',
      help: 'Steps held back by a safety gate, by gate.',
      labelNames: ['gate'] as const,
      registers: r,
    }),
    breakerOpen: new Gauge({
      name: 'aegis_storm_breaker_open',
      help: '1 while the storm breaker pauses remediation.',
      registers: r,
    }),
    inflight: new Gauge({
      name: 'aegis_actions_in_flight',
      help: 'SOP steps running now, by action.',
      labelNames: ['action'] as const,
      registers: r,
    }),
    cordonedByAegis: new Gauge({
      name: 'aegis_nodes_cordoned',
      help: 'Cordoned nodes, by who cordoned them (aegis or other).',
      labelNames: ['by'] as const,
      registers: r,
    }),
    ticketCorrupt: new Counter({
      name: 'aegis_ticket_corrupt_total',
      help: 'Unreadable ticket annotations found (reported, never overwritten).',
      registers: r,
    }),
    errors: new Counter({
      name: 'aegis_errors_total',
      help: 'Run-time errors isolated to one node or query, by where they happened.',
      labelNames: ['where'] as const,
      registers: r,
    }),
    priorityReloads: new Counter({
      name: 'aegis_priority_reload_total',
      help: 'Priority table reloads, by result.',
      labelNames: ['result'] as const,
      registers: r,
    }),
    pluginErrors: new Counter({
      name: 'aegis_plugin_errors_total',
      help: 'SOP plug-in load or run failures, by plug-in.',
      labelNames: ['plugin'] as const,
      registers: r,
    }),
    leader: new Gauge({
      name: 'aegis_leader',
      help: '1 while this replica holds the leader lease.',
      registers: r,
    }),
    dryRunPlans: new Counter({
      name: 'aegis_dry_run_steps_total',
      help: 'Steps computed but not executed because dry-run is on, by action.',
      labelNames: ['action'] as const,
      registers: r,
    }),
    notifications: new Counter({
      name: 'aegis_notifications_total',
      help: 'Notification requests sent, by receiver and result (ok, error, rejected).',
      labelNames: ['receiver', 'result'] as const,
      registers: r,
    }),
    notifyQueue: new Gauge({
      name: 'aegis_notify_queue',
      help: 'Alerts not yet delivered to the receiver in their current state.',
      labelNames: ['receiver'] as const,
      registers: r,
    }),
    notifyAlerts: new Gauge({
      name: 'aegis_notify_alerts',
      help: 'Alerts Aegis holds firing now, by alert name.',
      labelNames: ['alertname'] as const,
      registers: r,
    }),
    adapterRequests: new Counter({
      name: 'aegis_ticket_adapter_requests_total',
      help: 'HTTP requests of the ticket adapters, by adapter and result (ok, retry, error, rejected).',
      labelNames: ['adapter', 'result'] as const,
      registers: r,
    }),
    adapterEvents: new Counter({
      name: 'aegis_ticket_adapter_events_total',
      help: 'Ticket events handled by the adapters, by adapter, event and result (delivered, skipped, failed, dropped).',
      labelNames: ['adapter', 'event', 'result'] as const,
      registers: r,
    }),
    adapterQueue: new Gauge({
      name: 'aegis_ticket_adapter_queue',
      help: 'Ticket events waiting for delivery, by adapter.',
      labelNames: ['adapter'] as const,
      registers: r,
    }),
    adapterWriteBacks: new Counter({
      name: 'aegis_ticket_adapter_writebacks_total',
      help: 'External ticket ids written back into Aegis tickets, by adapter and result (ok, stale, error).',
      labelNames: ['adapter', 'result'] as const,
      registers: r,
    }),
    bmcRequests: new Counter({
      name: 'aegis_bmc_requests_total',
      help: 'Requests to node BMCs, by protocol (ipmi, redfish), operation and result (ok or the BMC error code).',
      labelNames: ['protocol', 'op', 'result'] as const,
      registers: r,
    }),
    bmcPowerCycles: new Counter({
      name: 'aegis_bmc_power_cycles_total',
      help: 'PowerCycle steps through a BMC, by protocol and result (Succeeded, Failed, Canceled).',
      labelNames: ['protocol', 'result'] as const,
      registers: r,
    }),
    drainCheckpointPods: new Counter({
      name: 'aegis_drain_checkpoint_pods_total',
      help: 'Pods a drain asked to checkpoint (or to finish) before eviction, by what happened: signalled, acknowledged, ended, deadline.',
      labelNames: ['result'] as const,
      registers: r,
    }),
    bmcHealthPolls: new Counter({
      name: 'aegis_bmc_health_polls_total',
      help: 'BMC health readings (SEL and sensors through IPMI), by result (ok or the BMC error code).',
      labelNames: ['result'] as const,
      registers: r,
    }),
    domainIncidents: new Gauge({
      name: 'aegis_domain_incidents',
      help: 'Open domain incidents: member nodes held now, by domain kind, domain and rule.',
      labelNames: ['kind', 'domain', 'rule'] as const,
      registers: r,
    }),
    domainIncidentsOpened: new Counter({
      name: 'aegis_domain_incidents_opened_total',
      help: 'Domain incidents opened, by domain kind and rule.',
      labelNames: ['kind', 'rule'] as const,
      registers: r,
    }),
    profileWithheld: new Counter({
      name: 'aegis_profile_withheld_steps_total',
      help: 'Steps a node-group profile kept from running: not run (observe-only) or replaced by a hand-off (cordon-only), by profile and action.',
      labelNames: ['profile', 'action'] as const,
      registers: r,
    }),
    profileNodes: new Gauge({
      name: 'aegis_profile_nodes',
      help: 'Nodes under each node-group behaviour profile.',
      labelNames: ['profile'] as const,
      registers: r,
    }),
    reliabilityIncidents: new Gauge({
      name: 'aegis_reliability_incidents',
      help: 'Tickets opened on the nodes of a node group, as their tickets record them.',
      labelNames: ['group'] as const,
      registers: r,
    }),
    reliabilityMtbi: new Gauge({
      name: 'aegis_reliability_mtbi_seconds',
      help: 'Mean time between two consecutive incidents on one node of the group.',
      labelNames: ['group'] as const,
      registers: r,
    }),
    reliabilityRepairs: new Gauge({
      name: 'aegis_reliability_repairs',
      help: 'Closed tickets of the group, by who closed them (aegis or human).',
      labelNames: ['group', 'by'] as const,
      registers: r,
    }),
    reliabilityRepairSeconds: new Gauge({
      name: 'aegis_reliability_repair_seconds',
      help: 'Total time open of the closed tickets of the group, by who closed them.',
      labelNames: ['group', 'by'] as const,
      registers: r,
    }),
    reliabilityLostGpuHours: new Gauge({
      name: 'aegis_reliability_lost_gpu_hours',
      help: 'GPU-hours lost while Aegis kept nodes of the group cordoned.',
      labelNames: ['group'] as const,
      registers: r,
    }),
    reliabilityLemonNodes: new Gauge({
      name: 'aegis_reliability_lemon_nodes',
      help: 'Lemon nodes of the group: repeat offenders across tickets.',
      labelNames: ['group'] as const,
      registers: r,
    }),
    reliabilityNodeIncidents: new Gauge({
      name: 'aegis_reliability_node_incidents',
      help: 'Tickets opened on the node, as its ticket records them.',
      labelNames: ['node', 'group'] as const,
      registers: r,
    }),
    reliabilityNodeMtbi: new Gauge({
      name: 'aegis_reliability_node_mtbi_seconds',
      help: 'Mean time between two consecutive incidents on the node.',
      labelNames: ['node', 'group'] as const,
      registers: r,
    }),
    reliabilityNodeMttr: new Gauge({
      name: 'aegis_reliability_node_mttr_seconds',
      help: 'Mean time to repair of the node, by who closed the tickets.',
      labelNames: ['node', 'group', 'by'] as const,
      registers: r,
    }),
    reliabilityNodeLostGpuHours: new Gauge({
      name: 'aegis_reliability_node_lost_gpu_hours',
      help: 'GPU-hours lost while Aegis kept the node cordoned.',
      labelNames: ['node', 'group'] as const,
      registers: r,
    }),
    reliabilityLemon: new Gauge({
      name: 'aegis_reliability_lemon',
      help: '1 when the node is a lemon (repeat offender across tickets).',
      labelNames: ['node', 'group'] as const,
      registers: r,
    }),
  };
}

/** The metric set, as injected everywhere. */
export type Metrics = ReturnType<typeof createMetrics>;

/** Names of every metric createMetrics defines (for the docs drift test). */
export function metricNames(metrics: Metrics): string[] {
  return metrics.registry.getMetricsAsArray().map((m) => m.name);
}
