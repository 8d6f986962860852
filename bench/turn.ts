/**
 * `npm run bench -- turn`: the TURN relay, p2pd vs coturn's turnserver, alternated in one run on
 * this machine with the same C client (bench/c/turnbench.c):
 *
 * - relayed round trips per second: 16 allocations, each with a channel bound to a C peer that
 *   echoes every datagram, each keeping 8 ChannelData messages in flight — 200-byte payloads,
 *   and Mbit/s with 1000-byte payloads (relayed payload, one direction: each round trip relays
 *   it twice);
 * - resident memory per allocation: the server's RSS with 5,000 allocations minus its RSS idle.
 *
 * Medians over the rounds, and the ratios p2pd / coturn (targets: >= 1.0x throughput,
 * <= 1.0x memory per allocation). Client, peer and servers share this machine's cores.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, hasCommand, median, start, treeRss, waitFor, type Started } from './lib/proc.ts';
import { stunAnswers } from './lib/udp.ts';

const HOST = '127.0.0.1';
const USER = 'bench';
const PASS = 'bench';
/** Relay ports below Linux's ephemeral range (32768-60999), where the client's 5,000 sockets live. */
const RELAY_MIN = 20000;
const RELAY_MAX = 29999;

interface Contender {
  readonly name: string;
  launch(port: number): Started;
}

const contenders: Contender[] = [
  {
    name: 'p2pd (2 workers)',
    launch: (port) => start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--roles', 'stun,turn', '--listen', HOST, '--port', String(port),
      '--workers', '2', '--http', `${HOST}:0`, '--user', `${USER}:${PASS}`, '--realm', 'bench', '--user-quota', '0', '--max-allocations', '0',
      '--max-bps', '0', '--allow-peer', '127.0.0.0/8', '--relay-ports', `${RELAY_MIN}-${RELAY_MAX}`, '--log-level', 'warn']),
  },
  {
    name: 'coturn turnserver',
    launch: (port) => start('turnserver', ['-n', '--listening-ip', HOST, '--listening-port', String(port), '--relay-ip', HOST,
      '--min-port', String(RELAY_MIN), '--max-port', String(RELAY_MAX), '--no-tls', '--no-dtls', '--no-cli', '--lt-cred-mech',
      '--user', `${USER}:${PASS}`, '--realm', 'bench', '--allow-loopback-peers', '--no-stdout-log', '--log-file', '/dev/null',
      '--simple-log', '--pidfile', `/tmp/p2pd-bench-turnserver-${port}.pid`]),
  },
];

/** Compiles bench/c/turnbench.c once into .bench/ (gcc and libcrypto's headers, libssl-dev). */
function turnbenchBinary(): string {
  const src = join(ROOT, 'bench/c/turnbench.c');
  const dir = join(ROOT, '.bench');
  const bin = join(dir, 'turnbench');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wno-deprecated-declarations', '-o', bin, src, '-lcrypto']);
  }
  return bin;
}

interface LoadResult {
  readonly rtps: number;
  readonly mbps: number;
}

function load(bin: string, port: number, peerPort: number, seconds: number, payload: number): LoadResult {
  const out = execFileSync(bin, ['load', HOST, String(port), HOST, String(peerPort), String(seconds), '16', '8', String(payload), USER, PASS], { encoding: 'utf8' });
  const r = JSON.parse(out) as { rtps: number };
  // Relayed payload in one direction.
  return { rtps: r.rtps, mbps: (r.rtps * payload * 8) / 1e6 };
}

/** RSS growth of the server's process tree per allocation, with `count` allocations held. */
async function rssPerAllocation(bin: string, server: Started, port: number, count: number): Promise<{ perAllocation: number; allocated: number }> {
  const pid = server.child.pid as number;
  await sleep(1000);
  const before = treeRss(pid);
  const hold = spawn(bin, ['hold', HOST, String(port), String(count), USER, PASS], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const allocated = await new Promise<number>((resolve, reject) => {
      let out = '';
      hold.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"allocated":(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      hold.once('exit', (code) => reject(new Error(`turnbench hold exited with ${code}`)));
    });
    await sleep(1000);
    const after = treeRss(pid);
    return { perAllocation: allocated > 0 ? (after - before) / allocated : NaN, allocated };
  } finally {
    hold.stdin.end();
    hold.kill();
  }
}

export async function run(opts: { short: boolean }): Promise<void> {
  const seconds = opts.short ? 2 : 5;
  const rounds = opts.short ? 1 : 3;
  const holdCount = opts.short ? 1000 : 5000;
  const bin = turnbenchBinary();
  const available = contenders.filter((c) => !c.name.startsWith('coturn') || hasCommand('turnserver'));
  let port = 35400;
  const peerPort = port++;
  const peer = start(bin, ['peer', HOST, String(peerPort)]);
  const rt = new Map<string, number[]>();
  const mbit = new Map<string, number[]>();
  const rss = new Map<string, number>();
  const push = (m: Map<string, number[]>, k: string, v: number): void => { m.set(k, [...(m.get(k) ?? []), v]); };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of available) {
        port += 2;
        const server = c.launch(port);
        try {
          await waitFor(() => stunAnswers(HOST, port), 15_000, `${c.name} to answer`);
          const small = load(bin, port, peerPort, seconds, 200);
          const big = load(bin, port, peerPort, seconds, 1000);
          push(rt, c.name, small.rtps);
          push(mbit, c.name, big.mbps);
          process.stdout.write(`  round ${r + 1} ${c.name.padEnd(20)} ${Math.round(small.rtps).toLocaleString('en').padStart(9)} round trips/s (200 B)  ${big.mbps.toFixed(0).padStart(6)} Mbit/s (1000 B)\n`);
        } finally {
          await server.stop();
        }
      }
    }
    for (const c of available) {
      port += 2;
      const server = c.launch(port);
      try {
        await waitFor(() => stunAnswers(HOST, port), 15_000, `${c.name} to answer`);
        const m = await rssPerAllocation(bin, server, port, holdCount);
        rss.set(c.name, m.perAllocation);
        process.stdout.write(`  memory ${c.name.padEnd(19)} ${(m.perAllocation / 1024).toFixed(1).padStart(6)} KiB RSS per allocation (${m.allocated} allocations)\n`);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await peer.stop();
  }

  process.stdout.write(`\nTURN relay, ${rounds} round(s) of ${seconds} s per payload, 16 allocations x 8 in flight, C client and echo peer, medians:\n`);
  for (const c of available) {
    const a = rt.get(c.name) ?? [];
    const b = mbit.get(c.name) ?? [];
    process.stdout.write(`  ${c.name.padEnd(20)} ${Math.round(median(a)).toLocaleString('en').padStart(9)} round trips/s   ${median(b).toFixed(0).padStart(6)} Mbit/s   ${((rss.get(c.name) ?? NaN) / 1024).toFixed(1).padStart(6)} KiB/allocation\n`);
  }
  const p = available[0]!.name;
  const c = available[1]?.name;
  if (c && rt.has(c)) {
    process.stdout.write(`  ratio p2pd / coturn: ${(median(rt.get(p)!) / median(rt.get(c)!)).toFixed(2)}x round trips (target >= 1.0x), `
      + `${(median(mbit.get(p)!) / median(mbit.get(c)!)).toFixed(2)}x Mbit/s (target >= 1.0x), `
      + `${((rss.get(p) ?? NaN) / (rss.get(c) ?? NaN)).toFixed(2)}x memory per allocation (target <= 1.0x)\n`);
  }
}
