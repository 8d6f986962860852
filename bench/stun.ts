/**
 * `npm run bench -- stun`: STUN Binding answers per second, p2pd vs coturn's turnserver, alternated
 * in one run on this machine, with the same C load generator. The bare C and Node responders show
 * the ceiling and that the generator is not the bottleneck.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, hasCommand, median, start, stunbenchBinary, waitFor, type Started } from './lib/proc.ts';
import { stunAnswers } from './lib/udp.ts';
import { loadUdpBatch } from '../src/transport/batchGroup.ts';

interface Contender {
  readonly name: string;
  launch(port: number): Started;
}

const HOST = '127.0.0.1';

const contenders: Contender[] = [
  {
    name: 'p2pd (2 workers)', // batched UDP I/O where the addon is built (the default)
    launch: (port) => start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--roles', 'stun', '--listen', HOST, '--port', String(port), '--workers', '2', '--http', `${HOST}:0`, '--log-level', 'warn']),
  },
  {
    name: 'p2pd (2 workers, dgram I/O)',
    launch: (port) => start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--roles', 'stun', '--listen', HOST, '--port', String(port), '--workers', '2', '--udp-io', 'dgram', '--http', `${HOST}:0`, '--log-level', 'warn']),
  },
  {
    name: 'coturn turnserver',
    launch: (port) => start('turnserver', ['-n', '--listening-ip', HOST, '--listening-port', String(port), '--no-tls', '--no-dtls', '--no-cli', '--no-tcp', '--log-file', '/dev/null', '--simple-log', '--realm', 'bench', '--pidfile', `/tmp/p2pd-bench-turnserver-${port}.pid`]),
  },
  { name: 'bare C responder (1 process)', launch: (port) => start(stunbenchBinary(), ['echo', HOST, String(port)]) },
  { name: 'bare Node responder (2 processes)', launch: (port) => start(process.execPath, [join(ROOT, 'bench/nodeEcho.ts'), HOST, String(port), '2']) },
];

export async function run(opts: { short: boolean }): Promise<void> {
  const seconds = opts.short ? 1 : 5;
  const rounds = opts.short ? 1 : 3;
  const gen = stunbenchBinary();
  const results = new Map<string, number[]>();
  const available = contenders.filter((c) => !c.name.startsWith('coturn') || hasCommand('turnserver'));
  let port = 24780; // below the ephemeral range (32768+), where outgoing connections take ports
  for (let r = 0; r < rounds; r++) {
    for (const c of available) {
      port += 2;
      const server = c.launch(port);
      try {
        // Generous: on a loaded shared machine two workers can take well over 15 s to start.
        await waitFor(() => stunAnswers(HOST, port), 60_000, `${c.name} to answer`);
        const out = execFileSync(gen, ['load', HOST, String(port), String(seconds), '64', '8'], { encoding: 'utf8' });
        const rps = (JSON.parse(out) as { rps: number }).rps;
        results.set(c.name, [...(results.get(c.name) ?? []), rps]);
        process.stdout.write(`  round ${r + 1} ${c.name.padEnd(36)} ${Math.round(rps).toLocaleString('en')} answers/s\n`);
      } finally {
        await server.stop();
      }
    }
  }
  process.stdout.write(`\nSTUN Binding, ${rounds} round(s) of ${seconds} s, C load generator (64 sockets x 8 in flight), medians:\n`);
  for (const [name, xs] of results) process.stdout.write(`  ${name.padEnd(36)} ${Math.round(median(xs)).toLocaleString('en').padStart(10)} /s\n`);
  const p = results.get('p2pd (2 workers)');
  if (p && !loadUdpBatch()) process.stdout.write('  (the udpbatch addon is not built here: p2pd ran on dgram; `npm run build:native`)\n');
  const c = results.get('coturn turnserver');
  if (p && c) process.stdout.write(`  ratio p2pd / coturn: ${(median(p) / median(c)).toFixed(2)}x (target >= 1.0x)\n`);
  // The rates swing between rounds on a shared machine; the ratio within a round swings less.
  const ceiling = results.get('bare C responder (1 process)');
  if (p && ceiling) {
    const perRound = p.map((x, r) => x / (ceiling[r] as number));
    process.stdout.write(`  ratio p2pd / bare C responder: ${(median(p) / median(ceiling)).toFixed(2)}x of the medians, `
      + `${perRound.map((x) => `${x.toFixed(2)}x`).join(' ')} by round (target >= 0.85x)\n`);
  }
}
