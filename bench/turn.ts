/**
 * `npm run bench -- turn`: the TURN relay, p2pd vs coturn's turnserver vs a bare C relay (the
 * machine's ceiling, bench/c/relayceiling.c: no auth, no policy), alternated in one run on this
 * machine with the same C client (bench/c/turnbench.c):
 *
 * - relayed round trips per second: 16 allocations, each with a channel bound to a C peer that
 *   echoes every datagram, each keeping 8 ChannelData messages in flight — 200-byte payloads,
 *   and Mbit/s with 1000-byte payloads (relayed payload, one direction: each round trip relays
 *   it twice);
 * - resident memory per allocation: the server's RSS with 5,000 (then, started afresh, 16,000)
 *   allocations held minus its RSS idle, divided by the allocations.
 *
 * - the server's CPU time per round trip (its whole process tree, user and system apart, read from
 *   /proc during the 200-byte load): where a server spends it — its own code or the kernel's
 *   UDP path — and what a round trip costs it whatever the other processes got of the cores.
 *
 * - capacity past one relay address: p2pd with two relay addresses (127.0.0.1 and 127.0.0.2,
 *   18,000 ports each) holding 32,000 allocations from two holder processes, and its RSS per
 *   allocation there (one address's port range bounds a node near 16,000: docs/turn.md
 *   "Several relay addresses").
 *
 * Medians over the rounds, each throughput figure as a ratio to coturn and to the ceiling
 * (docs/performance.md "Ceilings and instruction counts"), and memory per allocation as a ratio
 * to coturn (the ceiling keeps no state worth measuring). Client, peer and servers share this
 * machine's cores.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, benchBinary, hasCommand, median, start, treeCpu, treeRss, turnbenchBinary, waitFor, type Started } from './lib/proc.ts';
import { stunAnswers } from './lib/udp.ts';

const HOST = '127.0.0.1';
const USER = 'bench';
const PASS = 'bench';
/**
 * Relay ports below Linux's ephemeral range (32768-60999), where the client's 16,000 sockets
 * live: 18,000, room for 16,000 allocations on one relay address.
 */
const RELAY_MIN = 12000;
const RELAY_MAX = 29999;
/** Allocations held in the memory phase (a fresh server for each count). */
const HOLD_COUNTS = [5000, 16000] as const;

interface Contender {
  readonly name: string;
  launch(port: number): Started;
  /**
   * Whether it serves every allocation consistently yet: with all its SO_REUSEPORT sockets bound
   * (a group that grows after an Allocate moves that 5-tuple to another worker).
   */
  ready(port: number): Promise<boolean>;
  /** Whether the RSS-per-allocation phase measures it. */
  readonly memory: boolean;
}

/** p2pd as the bench runs it, with `extra` options (the capacity phase's second relay address). */
function launchP2pd(port: number, extra: readonly string[] = []): Started {
  return start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--roles', 'stun,turn', '--listen', HOST, '--port', String(port),
    '--workers', '2', '--http', `${HOST}:${port + 1}`, '--user', `${USER}:${PASS}`, '--realm', 'bench', '--user-quota', '0', '--max-allocations', '0',
    '--max-bps', '0', '--allow-peer', '127.0.0.0/8', '--relay-ports', `${RELAY_MIN}-${RELAY_MAX}`, '--log-level', 'warn', ...extra]);
}

const P2PD = 'p2pd (2 workers)';
const COTURN = 'coturn turnserver';
const CEILING = 'bare C relay (2 procs)';

const contenders: Contender[] = [
  {
    name: P2PD,
    memory: true,
    // Its HTTP server listens once every worker has bound its sockets (src/server/node.ts).
    ready: (port) => fetch(`http://${HOST}:${port + 1}/readyz`).then(() => true, () => false),
    launch: (port) => launchP2pd(port),
  },
  {
    name: COTURN,
    memory: true,
    ready: (port) => stunAnswers(HOST, port),
    launch: (port) => start('turnserver', ['-n', '--listening-ip', HOST, '--listening-port', String(port), '--relay-ip', HOST,
      '--min-port', String(RELAY_MIN), '--max-port', String(RELAY_MAX), '--no-tls', '--no-dtls', '--no-cli', '--lt-cred-mech',
      '--user', `${USER}:${PASS}`, '--realm', 'bench', '--allow-loopback-peers', '--no-stdout-log', '--log-file', '/dev/null',
      '--simple-log', '--pidfile', `/tmp/p2pd-bench-turnserver-${port}.pid`]),
  },
  // Two processes on SO_REUSEPORT, as p2pd runs two workers on this 2-core machine.
  // Both processes' sockets are bound before either forks (bench/c/relayceiling.c).
  { name: CEILING, memory: false, ready: (port) => stunAnswers(HOST, port), launch: (port) => start(benchBinary('relayceiling'), [HOST, String(port), '2']) },
];

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

/**
 * RSS growth of the server's process tree per allocation, with `count` allocations held by
 * `holders` client processes (one socket per allocation: a process holds at most its open-file limit).
 */
async function rssPerAllocation(bin: string, server: Started, port: number, count: number, holders = 1): Promise<{ perAllocation: number; allocated: number }> {
  const pid = server.child.pid as number;
  await sleep(1000);
  const before = treeRss(pid);
  // Holder k sends from 127.0.0.(k + 1): each source address has Linux's ~28,000 ephemeral ports.
  const holds = Array.from({ length: holders }, (_, k) => spawn(bin, ['hold', HOST, String(port), String(Math.ceil(count / holders)), USER, PASS, `127.0.0.${k + 1}`],
    { stdio: ['pipe', 'pipe', 'inherit'] }));
  try {
    const counts = await Promise.all(holds.map((hold) => new Promise<number>((resolve, reject) => {
      let out = '';
      hold.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"allocated":(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      hold.once('exit', (code) => reject(new Error(`turnbench hold exited with ${code}`)));
    })));
    const allocated = counts.reduce((a, b) => a + b, 0);
    await sleep(1000);
    const after = treeRss(pid);
    return { perAllocation: allocated > 0 ? (after - before) / allocated : NaN, allocated };
  } finally {
    for (const hold of holds) {
      hold.stdin.end();
      hold.kill();
    }
  }
}

/** Allocations held across two relay addresses in the capacity phase. */
const CAPACITY_COUNT = 32_000;

export async function run(opts: { short: boolean }): Promise<void> {
  const seconds = opts.short ? 2 : 5;
  const rounds = opts.short ? 1 : 3;
  const holdCounts: readonly number[] = opts.short ? [1000] : HOLD_COUNTS;
  const bin = turnbenchBinary();
  const available = contenders.filter((c) => c.name !== COTURN || hasCommand('turnserver'));
  let port = 31400; // below the ephemeral range (32768+), where the bench's own HTTP keep-alive connections take ports
  const peerPort = port++;
  const peer = start(bin, ['peer', HOST, String(peerPort)]);
  const rt = new Map<string, number[]>();
  const mbit = new Map<string, number[]>();
  /** Contender → server CPU µs per round trip, user and system, per round. */
  const cpuUser = new Map<string, number[]>();
  const cpuSys = new Map<string, number[]>();
  /** Contender → allocations held → RSS per allocation. */
  const rss = new Map<string, Map<number, number>>();
  const push = (m: Map<string, number[]>, k: string, v: number): void => { m.set(k, [...(m.get(k) ?? []), v]); };
  // A server that exits (a port taken, a bad option) says so at once rather than after the wait.
  const untilReady = (c: Contender, server: Started, at: number): Promise<void> => waitFor(() => {
    if (server.child.exitCode !== null) throw new Error(`${c.name} exited with code ${server.child.exitCode} before answering`);
    return c.ready(at);
  }, 15_000, `${c.name} to answer`);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of available) {
        port += 2;
        const server = c.launch(port);
        try {
          await untilReady(c, server, port);
          const cpu0 = treeCpu(server.child.pid as number);
          const small = load(bin, port, peerPort, seconds, 200);
          const cpu1 = treeCpu(server.child.pid as number);
          const big = load(bin, port, peerPort, seconds, 1000);
          push(rt, c.name, small.rtps);
          push(mbit, c.name, big.mbps);
          const trips = small.rtps * seconds;
          const user = ((cpu1.user - cpu0.user) / trips) * 1e6;
          const sys = ((cpu1.sys - cpu0.sys) / trips) * 1e6;
          push(cpuUser, c.name, user);
          push(cpuSys, c.name, sys);
          process.stdout.write(`  round ${r + 1} ${c.name.padEnd(22)} ${Math.round(small.rtps).toLocaleString('en').padStart(9)} round trips/s (200 B)  ${big.mbps.toFixed(0).padStart(6)} Mbit/s (1000 B)`
            + `  server CPU ${user.toFixed(2)} user + ${sys.toFixed(2)} sys µs per round trip\n`);
        } finally {
          await server.stop();
        }
      }
    }
    for (const count of holdCounts) {
      for (const c of available.filter((x) => x.memory)) {
        port += 2;
        const server = c.launch(port);
        try {
          await untilReady(c, server, port);
          const m = await rssPerAllocation(bin, server, port, count);
          rss.set(c.name, (rss.get(c.name) ?? new Map<number, number>()).set(count, m.perAllocation));
          process.stdout.write(`  memory ${c.name.padEnd(19)} ${(m.perAllocation / 1024).toFixed(1).padStart(6)} KiB RSS per allocation (${m.allocated} of ${count} allocations)\n`);
        } finally {
          await server.stop();
        }
      }
    }
    if (!opts.short) {
      port += 2;
      // Two relay addresses: room for 36,000 allocations.
      const server = launchP2pd(port, ['--relay-ip', '127.0.0.1,127.0.0.2']);
      try {
        await untilReady(contenders[0]!, server, port);
        const capacity = await rssPerAllocation(bin, server, port, CAPACITY_COUNT, 2);
        process.stdout.write(`  capacity p2pd, two relay addresses: ${capacity.allocated.toLocaleString('en')} of ${CAPACITY_COUNT.toLocaleString('en')} allocations held, ${(capacity.perAllocation / 1024).toFixed(1)} KiB RSS per allocation\n`);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await peer.stop();
  }

  const ratio = (m: Map<string, number[]>, name: string, to: string): string => {
    const a = m.get(name);
    const b = m.get(to);
    return a && b ? `${(median(a) / median(b)).toFixed(2)}x` : '-';
  };
  process.stdout.write(`\nTURN relay, ${rounds} round(s) of ${seconds} s per payload, 16 allocations x 8 in flight, C client and echo peer, medians:\n`);
  const memHeads = holdCounts.map((n) => `${`KiB/alloc at ${n.toLocaleString('en')}`.padStart(22)} ${'/coturn'.padStart(7)}`).join('   ');
  process.stdout.write(`  ${''.padEnd(22)} ${'round trips/s'.padStart(13)} ${'/coturn'.padStart(7)} ${'/ceiling'.padStart(8)}   ${'Mbit/s'.padStart(6)} ${'/coturn'.padStart(7)} ${'/ceiling'.padStart(8)}   ${memHeads}\n`);
  for (const c of available) {
    const mem = holdCounts.map((n) => {
      const own = rss.get(c.name)?.get(n);
      const theirs = rss.get(COTURN)?.get(n);
      const kib = own === undefined ? '-' : (own / 1024).toFixed(1);
      const memRatio = own !== undefined && theirs !== undefined ? `${(own / theirs).toFixed(2)}x` : '-';
      return `${kib.padStart(22)} ${memRatio.padStart(7)}`;
    }).join('   ');
    process.stdout.write(`  ${c.name.padEnd(22)} ${Math.round(median(rt.get(c.name) ?? [])).toLocaleString('en').padStart(13)} `
      + `${ratio(rt, c.name, COTURN).padStart(7)} ${ratio(rt, c.name, CEILING).padStart(8)}   `
      + `${median(mbit.get(c.name) ?? []).toFixed(0).padStart(6)} ${ratio(mbit, c.name, COTURN).padStart(7)} ${ratio(mbit, c.name, CEILING).padStart(8)}   `
      + `${mem}\n`);
  }
  process.stdout.write('\nServer CPU per relayed round trip (200 B, whole process tree), medians: µs user + µs system = total\n');
  for (const c of available) {
    const u = median(cpuUser.get(c.name) ?? []);
    const s = median(cpuSys.get(c.name) ?? []);
    process.stdout.write(`  ${c.name.padEnd(22)} ${u.toFixed(2).padStart(6)} + ${s.toFixed(2).padStart(6)} = ${(u + s).toFixed(2).padStart(6)}\n`);
  }
  process.stdout.write('  targets for p2pd (issue 15): >= 1.5x coturn and >= 0.8x the ceiling in round trips and Mbit/s, <= 4 KiB per allocation at 16,000\n');
}
