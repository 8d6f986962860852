/**
 * `npm run bench -- instructions`: instructions per STUN Binding answer and per relayed TURN
 * ChannelData round trip, p2pd vs coturn's turnserver vs the bare C relay of the TURN bench
 * (bench/c/relayceiling.c), counted by valgrind's callgrind over a
 * fixed number of packets: a figure the load of this shared machine cannot move (rates swing by
 * ±40 % between runs; docs/performance.md "Ceilings and instruction counts").
 *
 * Each server runs as one process under `valgrind --tool=callgrind --instr-atstart=no` (p2pd with
 * --workers 1, which serves in the primary; Node 24 run directly on src/cli/main.ts, so no wrapper
 * process). Once it answers, instrumentation is switched on, three warm-up bursts of each kind are sent, interleaved
 * (JIT tiers, first allocation), then for each kind: counters reset (a dump), BASE packets, a dump
 * (Ir_base), BASE + COUNT packets, a dump (Ir_full). (Ir_full − Ir_base) / COUNT is what one more
 * packet costs, with the fixed costs of a burst (a new allocation, the control commands) taken out.
 * A round trip relays two datagrams (client → peer, peer → client): the figure is per round trip.
 *
 * The C clients (bench/c/stunbench.c, bench/c/turnbench.c) keep 8 messages in flight on one socket
 * and one allocation. Under valgrind the server is ~50× slower than the client, so its batches are
 * fuller than at full speed: the counts are lower bounds of the per-packet cost at low load.
 * `--short` (CI) skips it: a run takes minutes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, benchBinary, hasCommand, start, stunbenchBinary, turnbenchBinary, waitFor } from './lib/proc.ts';
import { stunAnswers } from './lib/udp.ts';

const HOST = '127.0.0.1';
const USER = 'bench';
const PASS = 'bench';
const RELAY_MIN = 20000;
const RELAY_MAX = 29999;
const WARMUP = 10_000;
const WARMUP_ROUNDS = 3;
const BASE = 2000;
const COUNT = 10_000;
const PAYLOAD = 200;

interface Contender {
  readonly name: string;
  readonly argv: (port: number) => readonly string[];
}

const NODE24 = join(ROOT, 'node_modules/node/bin/node');

const contenders: Contender[] = [
  {
    name: 'p2pd (--workers 1)',
    argv: (port) => [NODE24, join(ROOT, 'src/cli/main.ts'), 'serve', '--roles', 'stun,turn', '--listen', HOST, '--port', String(port),
      '--workers', '1', '--http', `${HOST}:0`, '--user', `${USER}:${PASS}`, '--realm', 'bench', '--user-quota', '0', '--max-allocations', '0',
      '--max-bps', '0', '--allow-peer', '127.0.0.0/8', '--relay-ports', `${RELAY_MIN}-${RELAY_MAX}`, '--log-level', 'warn'],
  },
  {
    name: 'coturn turnserver',
    argv: (port) => ['turnserver', '-n', '--listening-ip', HOST, '--listening-port', String(port), '--relay-ip', HOST,
      '--min-port', String(RELAY_MIN), '--max-port', String(RELAY_MAX), '--no-tls', '--no-dtls', '--no-cli', '--lt-cred-mech',
      '--user', `${USER}:${PASS}`, '--realm', 'bench', '--allow-loopback-peers', '--no-stdout-log', '--log-file', '/dev/null',
      '--simple-log', '--pidfile', `/tmp/p2pd-bench-turnserver-${port}.pid`],
  },
  { name: 'bare C relay (1 proc)', argv: (port) => [benchBinary('relayceiling'), HOST, String(port), '1'] },
];

/** A server under callgrind: switch instrumentation, dump counters (each dump resets them). */
class Callgrind {
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly port: number;

  constructor(argv: readonly string[], port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'p2pd-callgrind-'));
    this.port = port;
    this.child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(this.dir, 'cg.out')}`, ...argv],
      { stdio: 'ignore' });
  }

  /**
   * Runs a callgrind_control command. Callgrind reads commands only while the program runs, not
   * while it sleeps in epoll_wait: Binding requests wake it until the command is answered.
   */
  async control(flag: string): Promise<void> {
    const ctl = spawn('callgrind_control', [flag, String(this.child.pid)], { stdio: 'ignore' });
    let exited: number | null | undefined;
    ctl.once('exit', (code) => { exited = code; });
    const until = Date.now() + 120_000;
    while (exited === undefined && Date.now() < until) await stunAnswers(HOST, this.port, 200);
    if (exited !== 0) {
      ctl.kill();
      throw new Error(`callgrind_control ${flag} failed (${exited})`);
    }
  }

  /** Dumps the counters and returns the instructions (Ir) counted since the previous dump. */
  async dump(): Promise<number> {
    const before = new Set(readdirSync(this.dir));
    await this.control('--dump');
    const fresh = readdirSync(this.dir).filter((f) => !before.has(f));
    let total = 0;
    for (const f of fresh) {
      const m = /^(?:summary|totals):\s+(\d+)/m.exec(readFileSync(join(this.dir, f), 'utf8'));
      if (m) total += Number(m[1]);
    }
    if (fresh.length === 0) throw new Error('callgrind wrote no dump');
    return total;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type Burst = (count: number) => number;

/** Ir per packet: (Ir of BASE + COUNT packets − Ir of BASE packets) / the packets in between. */
async function perPacket(cg: Callgrind, burst: Burst): Promise<number> {
  await cg.dump();
  const nBase = burst(BASE);
  const irBase = await cg.dump();
  const nFull = burst(BASE + COUNT);
  const irFull = await cg.dump();
  return (irFull - irBase) / (nFull - nBase);
}

export async function run(opts: { short: boolean }): Promise<void> {
  if (opts.short) {
    process.stdout.write('  skipped in --short: valgrind runs each server ~50x slower, a run takes minutes\n');
    return;
  }
  if (!hasCommand('valgrind') || !hasCommand('callgrind_control')) {
    process.stdout.write('  skipped: valgrind is not installed (apt-get install valgrind)\n');
    return;
  }
  const stun = stunbenchBinary();
  const turn = turnbenchBinary();
  const available = contenders.filter((c) => !c.name.startsWith('coturn') || hasCommand('turnserver'));
  let port = 31700; // below the ephemeral range (32768+), where outgoing connections take ports
  const peerPort = port++;
  const peer = start(turn, ['peer', HOST, String(peerPort)]);
  const results: { name: string; binding: number; relay: number }[] = [];
  try {
    for (const c of available) {
      port += 2;
      const serverPort = port;
      const bindings: Burst = (n) => {
        const out = execFileSync(stun, ['load', HOST, String(serverPort), '600', '1', '8', String(n)], { encoding: 'utf8' });
        return (JSON.parse(out) as { received: number }).received;
      };
      const roundTrips: Burst = (n) => {
        const out = execFileSync(turn, ['load', HOST, String(serverPort), HOST, String(peerPort), '600', '1', '8', String(PAYLOAD), USER, PASS, String(n)],
          { encoding: 'utf8' });
        return (JSON.parse(out) as { received: number }).received;
      };
      const cg = new Callgrind(c.argv(serverPort), serverPort);
      try {
        await waitFor(() => stunAnswers(HOST, serverPort), 300_000, `${c.name} to answer under valgrind`);
        await cg.control('--instr=on');
        // Interleaved, so that neither kind's measured window holds V8 compiling (or deoptimizing
        // and compiling again) the code the two share: a Binding fast path that leaves onUdp to
        // TURN alone made a 2,000-packet warm-up too short for the relay.
        for (let i = 0; i < WARMUP_ROUNDS; i++) {
          bindings(WARMUP);
          roundTrips(WARMUP);
        }
        const binding = await perPacket(cg, bindings);
        const relay = await perPacket(cg, roundTrips);
        results.push({ name: c.name, binding, relay });
        process.stdout.write(`  ${c.name.padEnd(20)} ${Math.round(binding).toLocaleString('en').padStart(9)} Ir per Binding answer  `
          + `${Math.round(relay).toLocaleString('en').padStart(9)} Ir per relayed round trip (${PAYLOAD} B)\n`);
      } finally {
        await cg.stop();
      }
    }
  } finally {
    await peer.stop();
  }
  process.stdout.write(`\nInstructions (callgrind Ir, all threads) per packet, (${BASE} + ${COUNT.toLocaleString('en')} packets) − ${BASE}, after ${WARMUP_ROUNDS} × ${WARMUP.toLocaleString('en')} of each kind, interleaved, as warm-up:\n`);
  const coturn = results.find((r) => r.name.startsWith('coturn'));
  for (const r of results) {
    const ratio = (a: number, b: number | undefined): string => (b ? `${(a / b).toFixed(2)}x` : '-').padStart(6);
    process.stdout.write(`  ${r.name.padEnd(20)} ${Math.round(r.binding).toLocaleString('en').padStart(9)} per Binding ${ratio(r.binding, coturn?.binding)}   `
      + `${Math.round(r.relay).toLocaleString('en').padStart(9)} per round trip ${ratio(r.relay, coturn?.relay)}  (x coturn)\n`);
  }
}
