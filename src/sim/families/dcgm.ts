/** dcgm-exporter families (one series per GPU), as in the captures and etc/default-counters.csv. */
import type { FamilyDef } from '../family.js';
import { GPU, ZERO, ONE, constant, counter, gauge, jitter } from './helpers.js';

// ---------------------------------------------------------------- dcgm-exporter (per GPU)
/** InfoROM-backed counters survive reboots. */
const PERSISTENT = { persistent: true };

/** dcgm-exporter families. */
export const DCGM_FAMILIES: readonly FamilyDef[] = [
  gauge('DCGM_FI_DEV_SM_CLOCK', 'SM clock frequency (in MHz).', GPU, constant(1980)),
  gauge('DCGM_FI_DEV_MEM_CLOCK', 'Memory clock frequency (in MHz).', GPU, constant(2619)),
  gauge('DCGM_FI_DEV_GPU_TEMP', 'GPU temperature (in C).', GPU, jitter(38, 43, 1)),
  gauge('DCGM_FI_DEV_MEMORY_TEMP', 'Memory temperature (in C).', GPU, jitter(43, 47, 2)),
  gauge('DCGM_FI_DEV_POWER_USAGE', 'Power draw (in W).', GPU, jitter(68, 75, 3)),
  counter(
    'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION',
    'Total energy consumption since boot (in mJ).',
    GPU,
    jitter(4e9, 5e9, 4),
    {
      slope: () => 70_000,
    },
  ),
  gauge('DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_MEM_COPY_UTIL', 'Memory utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_ENC_UTIL', 'Encoder utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_DEC_UTIL', 'Decoder utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_XID_ERRORS', 'Value of the last XID error encountered.', GPU, ZERO),
  gauge('DCGM_FI_DEV_FB_FREE', 'Framebuffer memory free (in MiB).', GPU, constant(81004)),
  gauge('DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', GPU, ZERO),
  gauge('DCGM_FI_DEV_FB_RESERVED', 'Framebuffer memory reserved (in MiB).', GPU, constant(555)),
  counter('DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'Total number of PCIe retries.', GPU),
  gauge('DCGM_FI_DEV_PCIE_LINK_GEN', 'PCIe current link generation.', GPU, constant(5)),
  gauge('DCGM_FI_DEV_PCIE_LINK_WIDTH', 'PCIe current link width.', GPU, constant(16)),
  counter(
    'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
    'Total number of NVLink bandwidth counters for all lanes.',
    GPU,
  ),
  counter(
    'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
    'Total number of NVLink flow-control CRC errors.',
    GPU,
  ),
  counter(
    'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL',
    'Total number of NVLink data CRC errors.',
    GPU,
  ),
  counter('DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', 'Total number of NVLink retries.', GPU),
  counter(
    'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
    'Total number of NVLink recovery errors.',
    GPU,
  ),
  counter('DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'Total number of single-bit volatile ECC errors.', GPU),
  counter('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'Total number of double-bit volatile ECC errors.', GPU),
  counter(
    'DCGM_FI_DEV_ECC_SBE_AGG_TOTAL',
    'Total number of single-bit persistent ECC errors.',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter(
    'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL',
    'Total number of double-bit persistent ECC errors.',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter('DCGM_FI_DEV_ECC_SBE_VOL_SRM', 'Single-bit volatile ECC errors in SRAM.', GPU),
  counter('DCGM_FI_DEV_ECC_DBE_VOL_SRM', 'Double-bit volatile ECC errors in SRAM.', GPU),
  counter(
    'DCGM_FI_DEV_ECC_SBE_AGG_SRM',
    'Single-bit aggregate ECC errors in SRAM.',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter(
    'DCGM_FI_DEV_ECC_DBE_AGG_SRM',
    'Double-bit aggregate ECC errors in SRAM.',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter(
    'DCGM_FI_DEV_RETIRED_SBE',
    'Total number of retired pages due to single-bit errors.',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter(
    'DCGM_FI_DEV_RETIRED_DBE',
    'Total number of retired pages due to double-bit errors.',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter('DCGM_FI_DEV_RETIRED_PENDING', 'Total number of pages pending retirement.', GPU),
  counter(
    'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
    'Number of remapped rows for uncorrectable errors',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  counter(
    'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS',
    'Number of remapped rows for correctable errors',
    GPU,
    ZERO,
    PERSISTENT,
  ),
  gauge('DCGM_FI_DEV_ROW_REMAP_FAILURE', 'Whether remapping of rows has failed', GPU, ZERO),
  gauge('DCGM_FI_DEV_ROW_REMAP_PENDING', 'Whether remapping of rows is pending', GPU, ZERO),
  gauge('DCGM_FI_DEV_CLOCKS_EVENT_REASONS', 'Current clock event reasons (bitmask).', GPU, ZERO),
  gauge(
    'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS',
    'Current clock throttle reasons (bitmask).',
    GPU,
    ZERO,
  ),
  gauge('DCGM_FI_DEV_PERSISTENCE_MODE', 'Persistence mode (1 = enabled).', GPU, ONE),
  counter(
    'DCGM_FI_DEV_THERMAL_VIOLATION',
    'Throttling duration due to thermal constraints (in us).',
    GPU,
  ),
  counter(
    'DCGM_FI_DEV_POWER_VIOLATION',
    'Throttling duration due to power constraints (in us).',
    GPU,
  ),
  gauge('DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'Ratio of time the graphics engine is active.', GPU, ZERO),
];
