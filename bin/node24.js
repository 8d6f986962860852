// Runs a module under Node.js >= 24 (DESIGN.md: the machines ship Node 20; the `node` dev
// dependency brings 24). When the current Node is older, re-executes the same command line
// with the project's own Node 24 and forwards its exit code and signals.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Imports `entry` (relative to the package root) with `args` as its command line, under Node >= 24. */
export async function runUnderNode24(entry, args) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) {
    process.argv.splice(2, process.argv.length - 2, ...args);
    await import(pathToFileURL(join(root, entry)).href);
    return;
  }
  const node24 = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node24)) {
    process.stderr.write(`p2pd needs Node.js >= 24 (this is ${process.version}); run \`npm ci\` first: it installs Node 24 as a dev dependency.\n`);
    process.exit(1);
  }
  const child = spawn(node24, [...process.execArgv, join(root, entry), ...args], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
