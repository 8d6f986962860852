/**
 * `npm run bench -- signaling`: N concurrent app/device pairs (2·N MQTT connections) against
 * `p2pd serve` with its embedded broker, then against Mosquitto with p2pd's
 * signaling service on shared subscriptions. Each app opens a session over MQTT, then sends paced
 * offers its device answers at once. Reports the offer→answer round trip (P50/P95/P99, target
 * P95 < 50 ms) and the broker's memory per connection.
 *
 * Full: 10,000 pairs (20,000 connections). Short (CI): 200 pairs. Clients run in several
 * processes; the file-descriptor limit is raised when running as root (prlimit).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, ask, hasCommand, percentile, start, treeRss, untilHealthy, type Started } from './lib/proc.ts';
import { haveMosquitto, startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.ts';
import { freePort } from '../test/helpers/ports.ts';

const SECRET = 'bench-signaling-secret-0123456789';
const HOST = '127.0.0.1';

interface Scenario {
  readonly name: string;
  /** Starts the broker side; returns what clients connect to and which processes to weigh. */
  setup(): Promise<{ url: string; httpUrl: string; brokerPids: () => number[]; tokenInRequest: boolean; stop(): Promise<void> }>;
}

interface Result {
  readonly name: string;
  readonly pairs: number;
  readonly connectSec: number;
  readonly rtts: number[];
  readonly lost: number;
  readonly errors: number;
  readonly bytesPerConnection: number;
  readonly rateAchieved: number;
}

async function p2pdNode(extra: readonly string[]): Promise<{ proc: Started; httpUrl: string; mqttPort: number }> {
  const httpPort = await freePort();
  const mqttPort = await freePort();
  // A whole node (signaling needs a TURN node to hand out with each session), one worker.
  const stunPort = await freePort();
  const proc = start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--workers', '1', '--port', String(stunPort), '--listen', HOST, '--http', `${HOST}:${httpPort}`,
    '--mqtt', `${HOST}:${mqttPort}`, '--jwt-secret', SECRET, '--log-level', 'warn', ...extra]);
  const httpUrl = `http://${HOST}:${httpPort}`;
  await untilHealthy(httpUrl, 20_000);
  return { proc, httpUrl, mqttPort };
}

const scenarios: Scenario[] = [
  {
    name: 'embedded broker (aedes in p2pd)',
    async setup() {
      // Every client logs in from 127.0.0.1, thousands at once: lift the per-source pre-login cap (default 32).
      const { proc, httpUrl, mqttPort } = await p2pdNode(['--mqtt-preauth-per-source', '1000000']);
      return { url: `mqtt://${HOST}:${mqttPort}`, httpUrl, tokenInRequest: false, brokerPids: () => [proc.child.pid as number], stop: () => proc.stop() };
    },
  },
  {
    name: 'Mosquitto + p2pd signaling (shared subscriptions)',
    async setup() {
      // Anonymous Mosquitto: provisioning 20,000 dynamic-security clients (the plugin rewrites its
      // JSON file on every change) would measure the plugin's file writes, not signaling.
      const mq: Mosquitto = await startMosquitto({ dynsec: false });
      const { proc, httpUrl } = await p2pdNode(['--mqtt-url', mq.url]);
      const mosquittoPid = Number(execFileSync('sh', ['-c', `pgrep -f "mosquitto -c ${mq.dir}/mosquitto.conf" | head -1`]).toString().trim());
      return {
        url: mq.url, httpUrl, tokenInRequest: true,
        brokerPids: () => [mosquittoPid],
        async stop() {
          await proc.stop();
          await mq.stop();
        },
      };
    },
  },
];

/** Raises this process's open-file limit (children inherit it) where allowed; returns the limit. */
function raiseFdLimit(): number {
  if (process.getuid?.() === 0 && hasCommand('prlimit')) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=200000:200000'], { stdio: 'ignore' });
    } catch { /* no CAP_SYS_RESOURCE here (a container): keep the limit */ }
  }
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim()) || 1024;
  } catch {
    return 1024;
  }
}

async function measure(s: Scenario, pairs: number, rounds: number, rate: number, workers: number): Promise<Result> {
  const side = await s.setup();
  const procs: ChildProcess[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      const w = fork(join(ROOT, 'bench/lib/signalingWorker.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise<void>((resolve) => w.once('message', () => resolve()));
      procs.push(w);
    }
    await sleep(500);
    const rssBefore = side.brokerPids().reduce((a, pid) => a + treeRss(pid), 0);
    const per = Math.ceil(pairs / workers);
    const t0 = performance.now();
    const connected = await Promise.all(procs.map((w, i) => ask<{ loginRetries: number }>(w, {
      cmd: 'connect', url: side.url, secret: SECRET, first: i * per, count: Math.max(0, Math.min(per, pairs - i * per)),
      tokenInRequest: side.tokenInRequest, parallel: 50,
    }, 'connected')));
    const connectSec = (performance.now() - t0) / 1000;
    // The embedded broker turns logins past --mqtt-max-logins-in-flight away with CONNACK 3; the clients come back.
    const retried = connected.reduce((a, c) => a + (c.loginRetries ?? 0), 0);
    if (retried > 0) process.stdout.write(`  ${s.name}: ${retried} logins turned away (CONNACK 3: logins in flight) and tried again\n`);
    await sleep(1000);
    const rssAfter = side.brokerPids().reduce((a, pid) => a + treeRss(pid), 0);
    const t1 = performance.now();
    const done = await Promise.all(procs.map((w) => ask<{ rtts: number[]; lost: number; errors: number }>(w, { cmd: 'run', rounds, ratePerSec: rate / workers }, 'done')));
    const runSec = (performance.now() - t1) / 1000;
    const rtts = done.flatMap((d) => d.rtts);
    return {
      name: s.name, pairs, connectSec, rtts,
      lost: done.reduce((a, d) => a + d.lost, 0),
      errors: done.reduce((a, d) => a + d.errors, 0),
      bytesPerConnection: (rssAfter - rssBefore) / (2 * pairs),
      rateAchieved: rtts.length / runSec,
    };
  } finally {
    await Promise.all(procs.map((w) => ask(w, { cmd: 'close' }, 'closed').catch(() => undefined)));
    for (const w of procs) w.kill();
    await side.stop();
  }
}

export async function run(opts: { short: boolean }): Promise<void> {
  const fdLimit = raiseFdLimit();
  // The broker holds one descriptor per connection (two per pair) plus a few of its own.
  const wanted = opts.short ? 200 : 10_000;
  const pairs = Math.min(wanted, Math.floor((fdLimit - 200) / 2));
  if (pairs < wanted) process.stdout.write(`open-file limit ${fdLimit}: ${pairs} pairs instead of ${wanted} (raise it with ulimit -n / prlimit as root)\n`);
  const rounds = opts.short ? 5 : 3;
  const rate = opts.short ? 400 : 1000; // offers per second across all pairs
  const workers = opts.short ? 2 : 4;
  const results: Result[] = [];
  for (const s of scenarios) {
    if (s.name.startsWith('Mosquitto') && !haveMosquitto()) {
      process.stdout.write(`skip ${s.name}: mosquitto not installed\n`);
      continue;
    }
    process.stdout.write(`${s.name}: ${pairs} pairs (${2 * pairs} connections), ${rounds} offers each at ${rate}/s…\n`);
    results.push(await measure(s, pairs, rounds, rate, workers));
  }
  process.stdout.write('\nbroker                                              pairs  connect  offer→answer ms P50 / P95 / P99   answered  rate/s  KiB/conn\n');
  for (const r of results) {
    const p = (q: number): string => percentile(r.rtts, q).toFixed(1);
    const ok = percentile(r.rtts, 95) < 50 ? 'ok' : 'OVER TARGET';
    process.stdout.write(`${r.name.padEnd(51)} ${String(r.pairs).padStart(5)}  ${r.connectSec.toFixed(1).padStart(5)} s  ${`${p(50)} / ${p(95)} / ${p(99)}`.padStart(22)}  ${ok.padEnd(11)} ${String(r.rtts.length).padStart(7)}  ${r.rateAchieved.toFixed(0).padStart(6)}  ${(r.bytesPerConnection / 1024).toFixed(1).padStart(7)}\n`);
    if (r.lost > 0 || r.errors > 0) process.stdout.write(`  ${r.lost} offers unanswered, ${r.errors} errors\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ short: process.argv.includes('--short') });
}
