/**
 * `npm run bench -- sessions`: the session API and the Redis store.
 *
 * 1. Over HTTP against a real `p2pd serve` (memory store, then Redis): each flow is create, get,
 *    delete. First paced at 1,000 creates/s (open loop) for latency P50/P95/P99 per request,
 *    then closed loop (32 in flight) for the most flows per second.
 * 2. N live sessions in a real redis-server (100,000; 10,000 with --short): Redis memory per
 *    session (INFO used_memory delta / N, index and trace included, and MEMORY USAGE of one
 *    record), then the time of one sweep that finds nothing stale and of one that closes all N.
 *
 * Targets (issue 4): create P95 < 10 ms at 1,000 creates/s; <= 1 KiB of Redis per session; a
 * sweep over 100,000 sessions < 2 s. Load generator and server share this machine's 2 cores.
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHs256Signer } from '../src/auth/token.ts';
import { newSession } from '../src/session/model.ts';
import { RedisSessionStore, sessionKey, traceKey } from '../src/session/redisStore.ts';
import { SessionSweeper } from '../src/session/sweeper.ts';
import { startRedis, redisCli, type RedisServer } from '../test/helpers/redis.ts';
import { freePort } from '../test/helpers/ports.ts';
import { ROOT, percentile, start, waitFor } from './lib/proc.ts';

const HOST = '127.0.0.1';
const JWT = 'bench-sessions-secret';

interface Lat { create: number[]; get: number[]; del: number[] }

const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;
const out = (s: string): void => { process.stdout.write(`${s}\n`); };

// node:http with keep-alive: far less client CPU than fetch, which shares the 2 cores with the server.
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function timed(base: string, method: string, path: string, headers: Record<string, string>, body: string | undefined, expect: number): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => {
        if (res.statusCode !== expect) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve({ ms: performance.now() - t0, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function flow(base: string, token: string, lat: Lat | undefined): Promise<void> {
  const headers = { authorization: `Bearer ${token}` };
  const c = await timed(base, 'POST', '/v1/sessions', headers, '{"deviceId":"cam-1"}', 201);
  const id = (JSON.parse(c.body) as { sessionId: string }).sessionId;
  const g = await timed(base, 'GET', `/v1/sessions/${id}`, headers, undefined, 200);
  const d = await timed(base, 'DELETE', `/v1/sessions/${id}`, headers, undefined, 204);
  if (lat) {
    lat.create.push(c.ms);
    lat.get.push(g.ms);
    lat.del.push(d.ms);
  }
}

/** Open loop: `rate` flows per second for `seconds`, started on schedule whatever the answers. */
async function paced(base: string, token: string, rate: number, seconds: number): Promise<Lat> {
  const lat: Lat = { create: [], get: [], del: [] };
  const inFlight: Promise<void>[] = [];
  const t0 = performance.now();
  const total = rate * seconds;
  let started = 0;
  while (started < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (started < due) {
      inFlight.push(flow(base, token, lat));
      started++;
    }
    await sleep(2);
  }
  await Promise.all(inFlight);
  return lat;
}

/** Closed loop: `concurrency` flows in flight for `seconds`; flows per second. */
async function saturate(base: string, token: string, concurrency: number, seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await flow(base, token, undefined);
      done++;
    }
  }));
  return done / seconds;
}

async function httpBench(name: string, extraArgs: readonly string[], short: boolean): Promise<void> {
  const port = await freePort();
  const httpPort = await freePort();
  const server = start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--roles', 'stun,turn,api', '--listen', HOST, '--port', String(port),
    '--http', `${HOST}:${httpPort}`, '--workers', '1', '--jwt-secret', JWT, '--log-level', 'warn',
    // One token from one address drives the whole load: lift the per-token, per-source and per-app bounds (docs/client.md "Limits").
    '--rate-limit-token', '0', '--rate-limit-source', '0', '--max-sessions-per-app', '0', '--max-viewers', '0', ...extraArgs]);
  const base = `http://${HOST}:${httpPort}`;
  try {
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 20_000, `p2pd (${name}) to be ready`);
    const token = await createHs256Signer(JWT).sign({ sub: 'bench-app', role: 'app', devices: ['*'] });
    await paced(base, token, 200, 1); // warm up (JIT, connections)
    const seconds = short ? 2 : 10;
    const lat = await paced(base, token, 1000, seconds);
    out(`  ${name}: ${lat.create.length} flows at 1,000 creates/s for ${seconds} s`);
    for (const [op, xs] of [['create', lat.create], ['get', lat.get], ['delete', lat.del]] as const) {
      out(`    ${op.padEnd(7)} P50 ${fmt(percentile(xs, 50)).padStart(9)}  P95 ${fmt(percentile(xs, 95)).padStart(9)}  P99 ${fmt(percentile(xs, 99)).padStart(9)}`);
    }
    const p95 = percentile(lat.create, 95);
    out(`    create P95 ${fmt(p95)} (target < 10 ms): ${p95 < 10 ? 'met' : 'NOT met'}`);
    const fps = await saturate(base, token, 32, short ? 2 : 5);
    out(`    closed loop, 32 in flight: ${Math.round(fps).toLocaleString('en')} create+get+delete flows/s (${Math.round(fps * 3).toLocaleString('en')} requests/s)`);
  } finally {
    await server.stop();
  }
}

function usedMemory(redis: RedisServer): number {
  const m = /used_memory:(\d+)/.exec(redisCli(redis.port, 'info', 'memory'));
  return Number(m?.[1] ?? 0);
}

async function storeBench(short: boolean): Promise<void> {
  const n = short ? 10_000 : 100_000;
  const redis = await startRedis();
  const store = new RedisSessionStore({ urls: [redis.url], commandTimeoutMs: 5000 });
  try {
    await store.ready();
    const nowSec = Math.floor(Date.now() / 1000);
    const before = usedMemory(redis);
    const t0 = performance.now();
    const batch = 1000;
    let firstId = '';
    for (let i = 0; i < n; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => {
        const id = crypto.randomUUID();
        if (i + j === 0) firstId = id;
        // Last seen an hour ago: live, and stale for a sweeper whose limit is under an hour.
        return store.create(newSession({
          sessionId: id, deviceId: `device_${i + j}`, appId: `app_${(i + j) % 5000}`, stunServer: 'stun:203.0.113.10:3478',
          turnNode: 'turn-eu-west-1a-7f9c', region: 'eu-west', ttl: 86400, now: nowSec - 3600,
        }));
      }));
    }
    const createS = (performance.now() - t0) / 1000;
    const after = usedMemory(redis);
    const perSession = (after - before) / n;
    const record = Number(redisCli(redis.port, 'memory', 'usage', sessionKey(firstId), 'samples', '0'));
    const trace = Number(redisCli(redis.port, 'memory', 'usage', traceKey(firstId), 'samples', '0'));
    out(`  ${n.toLocaleString('en')} live sessions in Redis (created in ${createS.toFixed(1)} s, ${Math.round(n / createS).toLocaleString('en')}/s through the store)`);
    out(`    Redis memory per session: ${Math.round(perSession)} bytes (INFO used_memory delta / count; record ${record} B + trace ${trace} B + index share) (target <= 1024): ${perSession <= 1024 ? 'met' : 'NOT met'}`);
    out(`    open sessions counted: ${(await store.countOpen()).toLocaleString('en')}`);

    const idle = new SessionSweeper({ store, intervalMs: 1000, staleAfterMs: 2 * 3600_000 });
    const none = await idle.sweepOnce();
    out(`    sweep finding nothing stale: ${fmt(none.durationMs)} (closed ${none.closed})`);
    const sweeper = new SessionSweeper({ store, intervalMs: 1000, staleAfterMs: 1800_000 });
    const all = await sweeper.sweepOnce();
    out(`    sweep closing all ${all.closed.toLocaleString('en')} stale sessions: ${fmt(all.durationMs)} (target < 2 s over 100,000${short ? '; this short run has 10,000' : ''}): ${all.durationMs < 2000 * (n / 100_000) ? 'met' : 'NOT met'}`);
  } finally {
    await store.shutdown();
    await redis.stop();
  }
}

export async function run(opts: { short: boolean }): Promise<void> {
  out('session API over HTTP (create + get + delete per flow):');
  await httpBench('memory store', [], opts.short);
  const redis = await startRedis();
  try {
    await httpBench('redis store', ['--redis-url', redis.url], opts.short);
  } finally {
    await redis.stop();
  }
  out('\nRedis store:');
  await storeBench(opts.short);
}

if (import.meta.main) await run({ short: process.argv.includes('--short') });
