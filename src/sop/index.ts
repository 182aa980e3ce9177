import { domainLadders } from './builtin/domains.js';
import { nodeInhibit, nodeLadders, nodeNotReady, nodeRecover } from './builtin/node.js';
import type { Sop } from './sop.js';

/** Every built-in SOP, in one visible list. Order is the tie-break when several could serve. */
export const builtInSops: readonly Sop[] = [
  nodeNotReady,
  nodeRecover,
  nodeInhibit,
  ...nodeLadders,
  ...domainLadders,
];
