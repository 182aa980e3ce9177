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
 * invalid, collide with an id, claim a condition another plug-in already claimed or throw in
 * createInstance are reported and skipped. Conditions map to SOPs by the catalogue's `sop`
 * field, and by an SOP's `handles`.
 *
 * A plug-in never replaces a built-in on its own: reusing a built-in's id, or handling a
 * condition a built-in serves (by the catalogue or a built-in's `handles`), is refused unless
 * its id is listed in `pluginOverrides` (`sop.pluginOverrides`). A listed plug-in with a
 * built-in's id takes that built-in's place for every condition it served; a listed plug-in's
 * `handles` win over the built-in for those conditions. Conditions no built-in serves are open
 * to any plug-in, first come (files in name order).
 */
export function createSopRegistry(input: {
  builtins: readonly Sop[];
  plugins?: readonly { sop: unknown; origin: string }[];
  catalogue: readonly CatalogueEntry[];
  bridge: ApiBridge;
  disabled?: readonly string[];
  knownConditions: ReadonlySet<string>;
  /** Plug-in SOP ids allowed to replace a built-in (`sop.pluginOverrides`). */
  pluginOverrides?: readonly string[];
}): SopRegistry {
  const byId = new Map<string, RegisteredSop>();
  const problems: string[] = [];
  const disabled = new Set(input.disabled ?? []);
  const allowed = new Set(input.pluginOverrides ?? []);
  const canonical = new Map<string, string>();
  for (const e of input.catalogue) {
    canonical.set(e.name, e.name);
    for (const a of e.aliases ?? []) canonical.set(a, e.name);
  }
  const nameOf = (c: string): string => canonical.get(c) ?? c;
  for (const sop of input.builtins) {
    assertSop(sop, 'builtin');
    if (byId.has(sop.id))
      throw new HealError(ErrorCode.SopDuplicateId, `SOP "${sop.id}" is registered twice`);
    byId.set(sop.id, { sop, instance: sop.createInstance(input.bridge), origin: 'builtin' });
  }
  // Which built-in serves each condition (catalogue first, a built-in's `handles` over it).
  const builtinFor = new Map<string, string>();
  for (const entry of input.catalogue)
    if (entry.sop !== null && byId.has(entry.sop)) builtinFor.set(entry.name, entry.sop);
  for (const sop of input.builtins)
    for (const h of sop.handles ?? []) builtinFor.set(nameOf(h), sop.id);
  const replaced = new Set<string>();
  const pluginClaims = new Map<string, RegisteredSop>();
  for (const p of input.plugins ?? []) {
    try {
      assertSop(p.sop, p.origin);
      const sop = p.sop;
      const mayOverride = allowed.has(sop.id);
      const existing = byId.get(sop.id);
      const replacesBuiltin = existing?.origin === 'builtin' && !replaced.has(sop.id);
      if (existing !== undefined && !(replacesBuiltin && mayOverride)) {
        throw new HealError(
          ErrorCode.SopDuplicateId,
          replacesBuiltin
            ? `${p.origin}: SOP "${sop.id}" is already registered as a built-in; a plug-in replaces a built-in only when its id is listed in sop.pluginOverrides`
            : `${p.origin}: SOP "${sop.id}" is already registered by ${existing.origin}`,
        );
      }
      for (const h of sop.handles ?? []) {
        if (!input.knownConditions.has(h)) {
          throw new HealError(
            ErrorCode.UnknownCondition,
            `${p.origin}: ${sop.id} handles unknown condition "${h}"`,
          );
        }
        const served = builtinFor.get(nameOf(h));
        if (served !== undefined && !mayOverride) {
          throw new HealError(
            ErrorCode.SopDuplicateId,
            `${p.origin}: ${sop.id} handles ${h}, which the built-in SOP "${served}" serves; a plug-in takes a condition over from a built-in only when its id is listed in sop.pluginOverrides`,
          );
        }
        const other = pluginClaims.get(nameOf(h));
        if (other !== undefined) {
          throw new HealError(
            ErrorCode.SopDuplicateId,
            `${p.origin}: ${sop.id} handles ${h}, already claimed by ${other.sop.id} (${other.origin})`,
          );
        }
      }
      const reg = { sop, instance: sop.createInstance(input.bridge), origin: p.origin };
      if (existing !== undefined) replaced.add(sop.id);
      byId.set(sop.id, reg);
      for (const h of sop.handles ?? []) pluginClaims.set(nameOf(h), reg);
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  for (const id of allowed) {
    const reg = byId.get(id);
    if (reg === undefined || reg.origin === 'builtin')
      problems.push(`sop.pluginOverrides names "${id}", which no loaded plug-in provides`);
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
  for (const sop of input.builtins) {
    const reg = byId.get(sop.id);
    if (reg !== undefined) for (const h of sop.handles ?? []) byCondition.set(nameOf(h), reg);
  }
  for (const [cond, reg] of pluginClaims) byCondition.set(cond, reg);
  return {
    problems,
    forCondition: (c) => {
      const reg = byCondition.get(nameOf(c));
      return reg === undefined || disabled.has(reg.sop.id) ? undefined : reg;
    },
    get: (id) => byId.get(id),
    all: () => [...byId.values()],
  };
}
