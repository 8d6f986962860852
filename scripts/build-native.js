// Builds the native addon into .build/ with the machine's C compiler and Node-API headers:
// udpbatch, batched UDP I/O for the STUN/TURN listeners and the TURN relay sockets
// (src/transport/native/udpbatch.c). Runs at `npm ci` (postinstall) and as
// `npm run build:native`. Without a compiler or headers p2pd still works, on Node's dgram; this
// script then says so and exits 0 (pass --strict to fail instead).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/transport/native/udpbatch.c');
const out = join(root, '.build/udpbatch.node');
const strict = process.argv.includes('--strict');

function fail(why) {
  process.stderr.write(`build-native: ${why}; the listeners and relay sockets will use Node's dgram (slower). Install a C compiler and Node's headers (Debian: gcc, nodejs) and run \`npm run build:native\`.\n`);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') fail('batched UDP I/O (recvmmsg/sendmmsg) is Linux-only');
const candidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include/node'),
  join(dirname(process.execPath), '../include/node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const include = candidates.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
if (!include) fail(`no Node-API headers (looked in ${candidates.join(', ')})`);
const cc = ['cc', 'gcc', 'clang'].find((c) => {
  try {
    execFileSync(c, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!cc) fail('no C compiler');
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(cc, ['-O2', '-fPIC', '-shared', '-Wall', '-Wno-unused-parameter', `-I${include}`, '-o', out, src], { stdio: 'inherit' });
} catch {
  fail('the compiler failed');
}
process.stdout.write(`build-native: built ${out}\n`);
