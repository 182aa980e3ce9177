/**
 * What the kernel log has shown on this node: per-rule counts in the window, the last Xid of every
 * GPU this boot (latched until reboot, like DCGM_FI_DEV_XID_ERRORS), and whether the previous boot
 * ended in a panic. Records carry microseconds since boot; their wall time is boot time + offset.
 * A panic found in the previous boot's log is dated at this boot's start, so it counts for one
 * window after the reboot and is never reported again by an agent restarted later.
 */
import { classifyKernelMessage, type KernelMatch } from './kernel-rules.js';
import type { KmsgRecord } from './kmsg-record.js';
import { LogWindow, type LogKey } from './log-window.js';

/** The last Xid of one GPU in this boot. */
export interface XidEvent {
  readonly pci: string;
  readonly xid: number;
  readonly atMs: number;
  readonly message: string;
}

/** What was read about the previous boot. */
export interface PreviousBoot {
  readonly available: boolean;
  readonly panic: boolean;
  /** Where it was read (pstore file, journal) or why not. */
  readonly detail: string;
}

/** Kernel log state for one boot. */
export class KernelLogState {
  readonly #window: LogWindow;
  readonly #windowMs: number;
  readonly #bootTimeMs: number;
  readonly #xids = new Map<string, XidEvent>();
  /** Highest record sequence number seen: a reopened /dev/kmsg replays the ring buffer. */
  #lastSeq = -1;
  #previousBoot: PreviousBoot = { available: false, panic: false, detail: 'not read yet' };
  /** Whether the live kernel log can be read (undefined until the first attempt). */
  kmsgAvailable: boolean | undefined;

  constructor(windowMs: number, bootTimeMs: number) {
    this.#window = new LogWindow(windowMs);
    this.#windowMs = windowMs;
    this.#bootTimeMs = bootTimeMs;
  }

  /** Classifies and records one live record (once per sequence number); returns what it matched. */
  onRecord(record: KmsgRecord): KernelMatch | undefined {
    if (record.seq <= this.#lastSeq) return undefined;
    this.#lastSeq = record.seq;
    const match = classifyKernelMessage(record.message);
    if (match === undefined) return undefined;
    const atMs = this.#bootTimeMs + record.usec / 1000;
    const key: LogKey = { source: 'kernel', rule: match.rule, ...optionalDevice(match.device) };
    this.#window.record(key, atMs);
    if (match.rule === 'xid' && match.xid !== undefined && match.device !== undefined) {
      this.#xids.set(match.device, {
        pci: match.device,
        xid: match.xid,
        atMs,
        message: record.message,
      });
    }
    return match;
  }

  /** Stores the previous boot's verdict. */
  setPreviousBoot(previous: PreviousBoot): void {
    this.#previousBoot = previous;
  }

  get previousBoot(): PreviousBoot {
    return this.#previousBoot;
  }

  /** The last Xid per GPU. */
  xids(): readonly XidEvent[] {
    return [...this.#xids.values()];
  }

  /** True while the previous boot's panic is within the window after this boot started. */
  panicInWindow(nowMs: number): boolean {
    return this.#previousBoot.panic && nowMs - this.#bootTimeMs < this.#windowMs;
  }

  /** Kernel log counts in the window, the previous-boot panic included. */
  counts(nowMs: number): { key: LogKey; count: number }[] {
    const out = this.#window.counts(nowMs);
    const panic = out.find((c) => c.key.rule === 'panic' && c.key.device === undefined);
    const previous = this.panicInWindow(nowMs) ? 1 : 0;
    if (panic) panic.count += previous;
    else out.push({ key: { source: 'kernel', rule: 'panic' }, count: previous });
    return out;
  }

  /** Count of one rule (no device) in the window. */
  count(rule: string, nowMs: number): number {
    return this.#window.count({ source: 'kernel', rule }, nowMs);
  }
}

function optionalDevice(device: string | undefined): { device?: string } {
  return device === undefined ? {} : { device };
}
