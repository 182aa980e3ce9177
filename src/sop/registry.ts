import type { CatalogueEntry } from '../catalogue/types.js';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { ApiBridge, Sop, SopInstance } from './sop.js';

const SOP_ID = /^[a-z]+\.[a-z][a-z0-9-]*$/;

/** A registered, instantiated SOP. */
export interface RegisteredSop {
  readonly sop: Sop;
  readonly instance: SopInstance;
  /** Where it came from: `builtin` or the plug-in file. */
  readonly origin: string;
}

/** The SOPs in force and which condition each serves. */
export interface SopRegistry {
  forCondition(condition: string): RegisteredSop | undefined;
  get(id: string): RegisteredSop | undefined;
  all(): readonly RegisteredSop[];
  /** Problems found while registering (broken plug-ins), for logs and metrics. */
  readonly problems: readonly string[];
}

/** Checks a value really is an SOP; throws SOP_INVALID naming what is wrong. */
export function assertSop(value: unknown, origin: string): asserts value is Sop {
  const v = value as Partial<Sop> | null;
  const where = `${origin}:`;
  if (typeof v !== 'object' || v === null)
    throw new HealError(ErrorCode.SopInvalid, `${where} export is not an object`);
  if (typeof v.id !== 'string' || !SOP_ID.test(v.id)) {
    throw new HealError(
      ErrorCode.SopInvalid,
      `${where} id ${JSON.stringify(v.id)} is not <domain>.<action>`,
    );
  }
  if (typeof v.description !== 'string')
    throw new HealError(ErrorCode.SopInvalid, `${where} ${v.id} has no description`);
  if (typeof v.createInstance !== 'function') {
    throw new HealError(ErrorCode.SopInvalid, `${where} ${v.id} has no createInstance(bridge)`);
  }
  if (
    v.handles !== undefined &&
    (!Array.isArray(v.handles) || v.handles.some((h) => typeof h !== 'string'))
  ) {
    throw new HealError(
      ErrorCode.SopInvalid,
      `${where} ${v.id}.handles must be an array of condition names`,
    );
  }
}

/**
 * Registers SOPs: built-ins must be valid (a bad one throws at start-up); plug-ins that are
 * invalid, collide with an id or throw in createInstance are reported and skipped. Conditions
 * map to SOPs by the catalogue's `sop` field, and by a plug-in's `handles` (which wins, so a
 * site can override a built-in ladder for one condition).
 */
export function createSopRegistry(input: {
  builtins: readonly Sop[];
  plugins?: readonly { sop: unknown; origin: string }[];
  catalogue: readonly CatalogueEntry[];
  bridge: ApiBridge;
  disabled?: readonly string[];
  knownConditions: ReadonlySet<string>;
}): SopRegistry {
  const byId = new Map<string, RegisteredSop>();
  const problems: string[] = [];
  const disabled = new Set(input.disabled ?? []);
  for (const sop of input.builtins) {
    assertSop(sop, 'builtin');
    if (byId.has(sop.id))
      throw new HealError(ErrorCode.SopDuplicateId, `SOP "${sop.id}" is registered twice`);
    byId.set(sop.id, { sop, instance: sop.createInstance(input.bridge), origin: 'builtin' });
  }
  const pluginOverrides = new Map<string, RegisteredSop>();
  for (const p of input.plugins ?? []) {
    try {
      assertSop(p.sop, p.origin);
      const sop = p.sop;
      if (byId.has(sop.id))
        throw new HealError(
          ErrorCode.SopDuplicateId,
          `${p.origin}: SOP "${sop.id}" is already registered`,
        );
      for (const h of sop.handles ?? []) {
        if (!input.knownConditions.has(h)) {
          throw new HealError(
            ErrorCode.UnknownCondition,
            `${p.origin}: ${sop.id} handles unknown condition "${h}"`,
          );
        }
      }
      const reg = { sop, instance: sop.createInstance(input.bridge), origin: p.origin };
      byId.set(sop.id, reg);
      for (const h of sop.handles ?? []) pluginOverrides.set(h, reg);
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  for (const id of disabled) {
    if (!byId.has(id))
      throw new HealError(ErrorCode.ConfigInvalid, `sop.disabled names unknown SOP "${id}"`);
  }
  const byCondition = new Map<string, RegisteredSop>();
  for (const entry of input.catalogue) {
    const reg = entry.sop === null ? undefined : byId.get(entry.sop);
    if (entry.sop !== null && reg === undefined) {
      throw new HealError(
        ErrorCode.CatalogueInvalid,
        `condition ${entry.name} names unknown SOP "${entry.sop}"`,
      );
    }
    if (reg !== undefined) byCondition.set(entry.name, reg);
  }
  for (const reg of byId.values()) {
    if (reg.origin !== 'builtin') continue;
    for (const h of reg.sop.handles ?? []) byCondition.set(h, reg);
  }
  for (const [cond, reg] of pluginOverrides) byCondition.set(cond, reg);
  return {
    problems,
    forCondition: (c) => {
      const reg = byCondition.get(c);
      return reg === undefined || disabled.has(reg.sop.id) ? undefined : reg;
    },
    get: (id) => byId.get(id),
    all: () => [...byId.values()],
  };
}
