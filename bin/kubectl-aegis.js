#!/usr/bin/env node
// `kubectl aegis`: kubectl runs any executable named kubectl-aegis on the PATH as a plugin.
// Runs the TypeScript CLI through tsx, like bin/aegis.js (no build step needed).
import { register } from 'tsx/esm/api';
register();
const { runPlugin } = await import('../src/kubectl/main.ts');
process.stdout.on('error', (err) => {
  process.exit(err.code === 'EPIPE' ? 0 : 1);
});
process.exitCode = await runPlugin(process.argv);
