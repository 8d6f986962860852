// `npm test`: type check, lint, then every test on node:test (unit tests beside the code as
// `*.test.ts`, integration tests in test/integration/). `--unit` skips the integration tests.
// Extra arguments are test files or globs to run instead of the whole suite.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const only = args.filter((a) => !a.startsWith('--'));

function step(name, cmd, cmdArgs) {
  const started = Date.now();
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit' });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    process.stderr.write(`\n${name} failed (${secs} s)\n`);
    process.exit(r.status ?? 1);
  }
  process.stderr.write(`${name}: ok (${secs} s)\n`);
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`npm test needs Node >= 24 on PATH (found ${process.version}); run it through \`npm test\` after \`npm ci\`.\n`);
  process.exit(1);
}

if (only.length === 0) {
  step('typecheck', process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']);
  step('lint', process.execPath, ['node_modules/eslint/bin/eslint.js', '.']);
}
const globs = only.length > 0 ? only : unitOnly ? ['src/**/*.test.ts'] : ['src/**/*.test.ts', 'test/**/*.test.ts'];
const concurrency = process.env.P2PD_TEST_CONCURRENCY ?? '3';
step('tests', process.execPath, ['--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-timeout=240000', ...globs]);
