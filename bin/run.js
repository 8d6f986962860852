#!/usr/bin/env node
// `node bin/run.js FILE.ts args…`: runs a TypeScript entry point (bench, lab) under Node 24.
import { runUnderNode24 } from './node24.js';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node bin/run.js FILE.ts [args…]\n');
  process.exit(2);
}
await runUnderNode24(entry, args);
