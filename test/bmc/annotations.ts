/** Merges an annotation patch (`null` removes a key), as the apiserver's merge patch does. */
export function mergeAnnotations(
  base: Readonly<Record<string, string>>,
  patch: Readonly<Record<string, string | null>>,
): Record<string, string> {
  const removed = new Set(Object.keys(patch).filter((k) => patch[k] === null));
  const out = Object.fromEntries(Object.entries(base).filter(([k]) => !removed.has(k)));
  for (const [k, v] of Object.entries(patch)) if (v !== null) out[k] = v;
  return out;
}
