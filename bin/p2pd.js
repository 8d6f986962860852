#!/usr/bin/env node
import { runUnderNode24 } from './node24.js';

await runUnderNode24('src/cli/main.ts', process.argv.slice(2));
