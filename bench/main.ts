/**
 * `npm run bench -- [stun|turn|sessions|signaling|redis|e2e|viewers|scale|instructions ...] [--short]`: runs the named benchmarks
 * (all when none is named). `--short` is the quick form CI runs.
 */
const BENCHES: Record<string, () => Promise<{ run(opts: { short: boolean }): Promise<void> }>> = {
  stun: () => import('./stun.ts'),
  sessions: () => import('./sessions.ts'),
  signaling: () => import('./signaling.ts'),
  redis: () => import('./redisCommands.ts'),
  e2e: () => import('./e2e.ts'),
  turn: () => import('./turn.ts'),
  viewers: () => import('./viewers.ts'),
  scale: () => import('./scale.ts'),
  instructions: () => import('./instructions.ts'),
};

const args = process.argv.slice(2);
const short = args.includes('--short');
const names = args.filter((a) => !a.startsWith('--'));
const selected = names.length > 0 ? names : Object.keys(BENCHES);
for (const name of selected) {
  const load = BENCHES[name];
  if (!load) {
    process.stderr.write(`unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n== bench ${name}${short ? ' (short)' : ''}\n`);
  await (await load()).run({ short });
}
