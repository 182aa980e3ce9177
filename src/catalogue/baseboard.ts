import type { CatalogueEntry } from './types.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * One BMC sub-system of BaseBoardCriticalIssue: the faulty-part count per node, labelled
 * `part=<name>` (the original's id: fan, temperature, voltage, power, current, pcie, sysHealth).
 */
function part(name: string, faulty: string): string {
  return `label_replace(count by (node) (${faulty}), "part", "${name}", "node", ".*")`;
}

const BASEBOARD_PARTS = [
  part('sysHealth', 'ipmi_sensor_state{name=~"SysHealth_Stat|Sys_Health"} > 0'),
  part('fan', 'ipmi_fan_speed_state > 0'),
  part('fan', 'ipmi_sensor_state{type="Fan",name!~"FAN_Redundant|.*_R_Status"} > 0'),
  part('temperature', 'ipmi_temperature_state > 1'),
  part('voltage', 'ipmi_voltage_state > 1'),
  part('power', 'ipmi_power_state > 1'),
  part('power', 'ipmi_sensor_state{type=~"Power.*",name!~".*Redundant|.*Redundancy"} > 1'),
  part('current', 'ipmi_current_state > 1'),
  part('pcie', 'ipmi_sensor_state{name="PCIe_Status"} > 0'),
];

/** Baseboard (BMC) conditions read through ipmi_exporter. */
export const BASEBOARD_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'BaseBoardCriticalIssue',
    domain: 'Baseboard',
    description:
      'The BMC reports a faulty sub-system; id = part (fan, temperature, voltage, power, current, pcie, ' +
      'sysHealth), value = faulty sensors. The original required the fault now and 3 hours ago (offset 3h); ' +
      'here the 3-hour persistence is the for-duration, which also survives a single bad scrape. ' +
      'Entity Presence sensors are ignored (known false critical on Dell BMCs).',
    signal: 'ipmi-exporter',
    expr: `max by (node, part) (${BASEBOARD_PARTS.join(' or ')})`,
    deviceLabel: 'part',
    forMs: 3 * HOUR,
    clearForMs: 30 * MIN,
    clear: 'Every sensor of the part nominal for 30 minutes.',
    priority: 99,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'baseboard.replace',
    fault: {
      defaultDevice: 'fan',
      series: [{ metric: 'ipmi_fan_speed_state', labels: { name: 'FAN1' }, value: 2 }],
    },
  },
  {
    name: 'BaseBoardSensorWarning',
    domain: 'Baseboard',
    description:
      'A BMC sensor has been in warning state (1) for 30 minutes; value = sensors in warning. Record only.',
    signal: 'ipmi-exporter',
    expr:
      'count by (node) (ipmi_sensor_state == 1 or ipmi_fan_speed_state == 1 or ipmi_temperature_state == 1 ' +
      'or ipmi_voltage_state == 1 or ipmi_power_state == 1 or ipmi_current_state == 1) > 0',
    deviceLabel: '',
    forMs: 30 * MIN,
    clearForMs: 30 * MIN,
    clear: 'No sensor in warning for 30 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [{ metric: 'ipmi_temperature_state', labels: { name: 'Inlet Temp' }, value: 1 }],
    },
  },
  {
    name: 'IpmiExporterDown',
    domain: 'Baseboard',
    description:
      'ipmi_exporter reported sensors for the node in the last day but reports none now (exporter or BMC ' +
      'down): the node BMC rules are stale. Record only; clears by itself after a day of silence.',
    signal: 'prometheus',
    expr: 'count by (node) (max_over_time(ipmi_sensor_state[1d])) unless on(node) count by (node) (ipmi_sensor_state)',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 2 * MIN,
    clear: 'ipmi_exporter reports sensors for the node again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: { series: [{ metric: 'ipmi_sensor_state', labels: {}, remove: true }] },
  },
];
