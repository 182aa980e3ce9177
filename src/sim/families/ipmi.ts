/** ipmi_exporter families (BMC sensors, chassis), as in the ipmi captures. */
import type { FamilyDef, Variants } from '../family.js';
import {
  NODE_ALL,
  GENERIC_SENSOR_TYPES,
  NODE,
  ONE,
  ZERO,
  constant,
  gauge,
  jitter,
  sensors,
} from './helpers.js';

// ---------------------------------------------------------------- ipmi_exporter (per BMC sensor)
/** ipmi_exporter families. */
export const IPMI_FAMILIES: readonly FamilyDef[] = [
  gauge('ipmi_up', "'1' if a scrape of the IPMI device was successful, '0' otherwise.", NODE, ONE, {
    ...NODE_ALL,
    variants: () => IPMI_COLLECTORS,
  }),
  gauge('ipmi_chassis_power_state', 'Current power state (1=on, 0=off).', NODE, ONE, NODE_ALL),
  gauge(
    'ipmi_chassis_drive_fault_state',
    'Current drive fault state (1=false, 0=true).',
    NODE,
    ONE,
    NODE_ALL,
  ),
  gauge(
    'ipmi_sensor_state',
    'Indicates the severity of the state reported by an IPMI sensor (0=nominal, 1=warning, 2=critical).',
    sensors(GENERIC_SENSOR_TYPES, true),
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'ipmi_fan_speed_rpm',
    'Fan speed in rotations per minute.',
    sensors(['Fan']),
    jitter(5400, 5800, 21),
    NODE_ALL,
  ),
  gauge(
    'ipmi_fan_speed_state',
    'Reported state of a fan speed sensor (0=nominal, 1=warning, 2=critical).',
    sensors(['Fan']),
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'ipmi_temperature_celsius',
    'Temperature reading in degree Celsius.',
    sensors(['Temperature']),
    jitter(28, 45, 22),
    NODE_ALL,
  ),
  gauge(
    'ipmi_temperature_state',
    'Reported state of a temperature sensor (0=nominal, 1=warning, 2=critical).',
    sensors(['Temperature']),
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'ipmi_voltage_volts',
    'Voltage reading in Volts.',
    sensors(['Voltage']),
    (n, d) => [12.1, 5.02, 3.31][d] ?? 1,
    NODE_ALL,
  ),
  gauge(
    'ipmi_voltage_state',
    'Reported state of a voltage sensor (0=nominal, 1=warning, 2=critical).',
    sensors(['Voltage']),
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'ipmi_current_amperes',
    'Current reading in Amperes.',
    sensors(['Current']),
    constant(6.4),
    NODE_ALL,
  ),
  gauge(
    'ipmi_current_state',
    'Reported state of a current sensor (0=nominal, 1=warning, 2=critical).',
    sensors(['Current']),
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'ipmi_power_watts',
    'Power reading in Watts.',
    sensors(['Power']),
    jitter(1400, 1600, 23),
    NODE_ALL,
  ),
  gauge(
    'ipmi_power_state',
    'Reported state of a power sensor (0=nominal, 1=warning, 2=critical).',
    sensors(['Power']),
    ZERO,
    NODE_ALL,
  ),
];
const IPMI_COLLECTORS: Variants = ['bmc', 'chassis', 'ipmi', 'sel'].map((collector) => ({
  collector,
}));
