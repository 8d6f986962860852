/**
 * `npm run bench -- redis`: Redis commands per login and per offer and its answer on the broker
 * fabric (docs/signaling.md "One broker across nodes"), counted, not timed: a figure load cannot
 * move. Two `p2pd serve` nodes on one Redis (and on a Redis Cluster of 3 masters), devices on node
 * A, their apps on node B, MQTT.js clients logging in as the SDK does (test/helpers/signaling.ts:
 * own topic at QoS 1, a device's retained `online` and `offline` will). Redis' MONITOR sees every
 * command; each phase is counted between two moments Redis is quiet (a PUBACK's bookkeeping runs
 * after the answer arrived): devices log in, apps log in, each app asks for a session over MQTT,
 * each app sends an offer its device answers at once (both QoS 1), and (persistent sessions) each
 * device disconnects and logs in again with its client id, resubscribing. Printed per event: all
 * commands Redis ran (what `INFO commandstats` counts) = those the nodes sent, by name, + those
 * their scripts ran; and which of the node's connections sent them.
 *
 * Devices as the scale bench and the client checklist have them (a persistent session:
 * `clean = false`, a stable client id), and as the SDK has them today (clean sessions).
 *
 * Background work is kept out of the windows: heartbeats and the session sweeper run once an hour
 * here, and a phase during which a node renewed its client-id leases (once a minute, seen by its
 * ZRANGEBYSCORE) is run again. Connection upkeep (`cluster slots`, `info`, `ping`, …) is left out.
 *
 * Full: 200 pairs per case. Short (CI): 50.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, start, untilHealthy, waitFor, type Started } from './lib/proc.ts';
import { freePort } from '../test/helpers/ports.ts';
import { haveRedis, redisCli, startRedis, startRedisCluster, type RedisServer } from '../test/helpers/redis.ts';
import { JWT_SECRET, SDP_ANSWER, SDP_OFFER, connectPeer, requestSession, token, type Peer } from '../test/helpers/signaling.ts';

const HOST = '127.0.0.1';
/** Commands that keep a connection, not the broker, busy: not counted. */
const UPKEEP = new Set(['info', 'ping', 'cluster', 'client', 'command', 'hello', 'select', 'readonly', 'config', 'echo', 'monitor']);
/** Only the client-id lease refresh runs this (src/broker/clientIds.ts tick). */
const LEASE_TICK = 'zrangebyscore';
/** The ECHO that marks a place in every server's MONITOR stream. */
const MARK = 'p2pd-bench-mark-';
/** How often a phase is tried when a lease refresh fell into it. */
const ATTEMPTS = 4;

interface Case {
  readonly name: string;
  readonly cluster: boolean;
  readonly persistentDevices: boolean;
}

const CASES: readonly Case[] = [
  { name: 'Redis Cluster (3 masters), persistent device sessions', cluster: true, persistentDevices: true },
  { name: 'one Redis, persistent device sessions', cluster: false, persistentDevices: true },
  { name: 'one Redis, clean sessions (the SDK today)', cluster: false, persistentDevices: false },
];

interface Node {
  readonly proc: Started;
  readonly httpUrl: string;
  readonly mqttUrl: string;
}

async function startNode(redisUrls: readonly string[]): Promise<Node> {
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const stunPort = await freePort();
  const proc = start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--workers', '1', '--port', String(stunPort), '--listen', HOST,
    '--http', `${HOST}:${httpPort}`, '--mqtt', `${HOST}:${mqttPort}`, '--jwt-secret', JWT_SECRET, '--log-level', 'error',
    '--redis-url', redisUrls.join(','), '--heartbeat-interval', '3600', '--sweep-interval', '3600',
    '--mqtt-preauth-per-source', '1000000', '--rate-limit-token', '0', '--rate-limit-source', '0', '--max-sessions-per-app', '0'], { quiet: false });
  const httpUrl = `http://${HOST}:${httpPort}`;
  await untilHealthy(httpUrl, 60_000);
  return { proc, httpUrl, mqttUrl: `mqtt://${HOST}:${mqttPort}` };
}

/** One command as MONITOR shows it: who sent it (`lua`: a script) and its name. */
interface Seen { readonly from: string; readonly cmd: string }

/**
 * `redis-cli monitor` on every server: each command any client sends, and each one a script
 * runs (MONITOR marks those `lua`), so a window's commands are counted exactly, by name, by
 * connection (p2pd names its connections: p2pd-fabric-db, p2pd-sessions, …), and apart from the
 * commands inside scripts.
 */
class Monitor {
  private readonly servers: readonly RedisServer[];
  private readonly seen: Seen[][] = [];
  /** Per server, the marks (ECHO tags) seen and where in its list. */
  private readonly marks: Array<Map<string, number>> = [];
  private readonly procs: ChildProcess[] = [];
  private readonly names = new Map<string, string>();
  private round = 0;

  constructor(servers: readonly RedisServer[]) {
    this.servers = servers;
    for (const [k, s] of servers.entries()) {
      const list: Seen[] = [];
      const marks = new Map<string, number>();
      this.seen.push(list);
      this.marks.push(marks);
      const p = spawn('redis-cli', ['-p', String(s.port), 'monitor'], { stdio: ['ignore', 'pipe', 'inherit'] });
      this.procs.push(p);
      createInterface({ input: p.stdout as Readable }).on('line', (line) => {
        const m = /^\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?/.exec(line);
        if (!m) return;
        const cmd = (m[2] as string).toLowerCase();
        if (cmd === 'echo' && m[3]?.startsWith(MARK)) marks.set(m[3], list.length);
        list.push({ from: m[1] === 'lua' ? 'lua' : `${k}/${m[1] as string}`, cmd });
      });
    }
  }

  /** Where each server's list is at a mark sent now (once every monitor has seen it). */
  private async mark(): Promise<number[]> {
    const tag = `${MARK}${++this.round}`;
    for (const s of this.servers) redisCli(s.port, 'echo', tag);
    await waitFor(() => this.marks.every((m) => m.has(tag)), 10_000, 'the monitors to see the mark');
    return this.marks.map((m) => m.get(tag) as number);
  }

  /** A mark once Redis has been quiet (nothing but the marks) for 300 ms; bounded: 30 s. */
  async quiet(): Promise<number[]> {
    const until = Date.now() + 30_000;
    let at = await this.mark();
    for (;;) {
      await sleep(300);
      const next = await this.mark();
      // Quiet: nothing but upkeep between the two marks.
      const busy = this.seen.some((l, k) => l.slice(at[k], next[k]).some((x) => !UPKEEP.has(x.cmd)));
      if (!busy || Date.now() > until) return next;
      at = next;
    }
  }

  /** The commands between two marks, upkeep left out; connection names looked up now. */
  between(from: readonly number[], to: readonly number[]): Seen[] {
    for (const [k, s] of this.servers.entries()) {
      for (const m of redisCli(s.port, 'client', 'list').matchAll(/addr=(\S+) .*?name=(\S*)/g)) this.names.set(`${k}/${m[1] as string}`, m[2] || 'unnamed');
    }
    return this.seen.flatMap((l, k) => l.slice(from[k], to[k]))
      .filter((x) => !UPKEEP.has(x.cmd))
      .map((x) => ({ from: x.from === 'lua' ? 'lua' : (this.names.get(x.from) ?? 'gone'), cmd: x.cmd }));
  }

  stop(): void {
    for (const p of this.procs) p.kill();
  }
}

/**
 * Runs `phase` between two quiet marks; again (with fresh clients) when a lease refresh fell
 * into the window. Returns the commands it cost.
 */
async function measured(monitor: Monitor, what: string, phase: () => Promise<void>): Promise<Seen[]> {
  for (let attempt = 1; ; attempt++) {
    const from = await monitor.quiet();
    await phase();
    const seen = monitor.between(from, await monitor.quiet());
    if (!seen.some((x) => x.cmd === LEASE_TICK)) return seen;
    if (attempt >= ATTEMPTS) throw new Error(`${what}: a client-id lease refresh fell into each of ${ATTEMPTS} attempts`);
    process.stdout.write(`  ${what}: a lease refresh fell into the window, again\n`);
  }
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** `n (a 2, b 1, …)` per event, largest first. */
function tally(keys: readonly string[], events: number): string {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  const per = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return `${fmt(keys.length / events)} (${per.map(([k, n]) => `${k} ${fmt(n / events)}`).join(', ')})`;
}

/**
 * What a phase cost per event: every command Redis ran (what `INFO commandstats` counts), those
 * the nodes sent by name and by connection, and those their scripts ran.
 */
function perEvent(seen: readonly Seen[], events: number): string {
  const sent = seen.filter((x) => x.from !== 'lua');
  const inScripts = seen.filter((x) => x.from === 'lua');
  // ioredis sends EVAL until a connection has the script, EVALSHA after: one command either way.
  const name = (x: Seen): string => (x.cmd === 'evalsha' ? 'eval' : x.cmd);
  return `${fmt(seen.length / events)} = ${tally(sent.map(name), events)} sent`
    + (inScripts.length > 0 ? ` + ${tally(inScripts.map(name), events)} inside scripts` : '')
    + `; sent by ${tally(sent.map((x) => x.from), events).replace(/^[\d.]+ /, '')}`;
}

interface Row { readonly what: string; readonly value: string }

async function measureCase(c: Case, pairs: number): Promise<Row[]> {
  const cluster = c.cluster ? await startRedisCluster(3) : undefined;
  const single = c.cluster ? undefined : await startRedis();
  const servers = cluster ? cluster.servers : [single as RedisServer];
  const urls = cluster ? cluster.urls : [(single as RedisServer).url];
  const monitor = new Monitor(servers);
  const nodes: Node[] = [];
  const peers: Peer[] = [];
  const rows: Row[] = [];
  try {
    // A first: B's first heartbeat reads A's, and B is where the sessions are asked for (A learns
    // of B only at its next heartbeat, an hour on).
    nodes.push(await startNode(urls));
    nodes.push(await startNode(urls));
    const [a, b] = nodes as [Node, Node];
    const probe = await token('bench-probe', 'device');
    await waitFor(async () => {
      const r = await fetch(`${b.httpUrl}/v1/signaling`, { headers: { authorization: `Bearer ${probe}` } });
      return ((await r.json()) as { signaling: unknown[] }).signaling.length === 2;
    }, 30_000, 'node B lists both nodes');

    let round = 0;
    let devices: Peer[] = [];
    let apps: Peer[] = [];
    const inParallel = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
      const out: T[] = [];
      for (let i = 0; i < n; i += 20) out.push(...await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, j) => make(i + j))));
      return out;
    };
    const deviceLogins = await measured(monitor, 'device logins', async () => {
      const r = ++round;
      devices = await inParallel(pairs, (i) => connectPeer(a.mqttUrl, `rd${r}-${i}`, 'device',
        c.persistentDevices ? { clean: false, clientId: `rd${r}-${i}-c` } : {}));
      peers.push(...devices);
    });
    rows.push({ what: 'per device login (CONNECT, SUBSCRIBE own topic, retained `online`; node A)', value: perEvent(deviceLogins, pairs) });
    const appLogins = await measured(monitor, 'app logins', async () => {
      const r = ++round;
      apps = await inParallel(pairs, (i) => connectPeer(b.mqttUrl, `ra${r}-${i}`, 'app', { devices: [devices[i]?.id as string] }));
      peers.push(...apps);
    });
    rows.push({ what: 'per app login (CONNECT, SUBSCRIBE own topic; node B)', value: perEvent(appLogins, pairs) });
    const sessionIds: string[] = [];
    const sessions = await measured(monitor, 'session requests', async () => {
      sessionIds.length = 0;
      sessionIds.push(...(await inParallel(pairs, (i) => requestSession(apps[i] as Peer, (devices[i] as Peer).id))).map((s) => s.sessionId));
    });
    rows.push({ what: 'per session request over MQTT (app → service → session answer)', value: perEvent(sessions, pairs) });
    for (const [i, dev] of devices.entries()) {
      const app = apps[i] as Peer;
      dev.client.on('message', (_topic, payload) => {
        const m = JSON.parse(payload.toString()) as { type: string; sessionId: string; msgId: string };
        if (m.type !== 'offer') return;
        void dev.send(app.id, { type: 'answer', sessionId: m.sessionId, replyTo: m.msgId, payload: { type: 'answer', sdp: SDP_ANSWER } });
      });
    }
    let offerRound = 0;
    const offers = await measured(monitor, 'offers', async () => {
      const r = ++offerRound;
      await inParallel(pairs, async (i) => {
        const app = apps[i] as Peer;
        const msgId = `o${r}-${app.id}`;
        const answered = app.inbox.next((m) => m.body.type === 'answer' && m.body.replyTo === msgId, 20_000, `the answer to ${msgId}`);
        await app.send((devices[i] as Peer).id, { type: 'offer', sessionId: sessionIds[i], msgId, payload: { type: 'offer', sdp: SDP_OFFER } });
        await answered;
      });
    });
    rows.push({ what: 'per offer and its answer (QoS 1 each, app on B → device on A → app)', value: perEvent(offers, pairs) });
    if (c.persistentDevices) {
      // Each device leaves and comes straight back with its client id, as the SDK after a dropped
      // link: within the node's offline grace, so its presence is not rewritten `offline` between.
      const reconnects = await measured(monitor, 'device reconnects', async () => {
        devices = await inParallel(pairs, async (i) => {
          const dev = devices[i] as Peer;
          await dev.close();
          return connectPeer(a.mqttUrl, dev.id, 'device', { clean: false, clientId: dev.client.options.clientId as string });
        });
        peers.push(...devices);
      });
      rows.push({ what: 'per device reconnect (DISCONNECT, CONNECT with its session, SUBSCRIBE own topic again, retained `online`; node A)', value: perEvent(reconnects, pairs) });
    }
    return rows;
  } finally {
    await Promise.allSettled(peers.map((p) => p.close()));
    await Promise.allSettled(nodes.map((n) => n.proc.stop()));
    monitor.stop();
    await cluster?.stop();
    await single?.stop();
  }
}

export async function run(opts: { short: boolean }): Promise<void> {
  if (!haveRedis()) {
    process.stdout.write('skip redis: redis-server not installed\n');
    return;
  }
  const pairs = opts.short ? 50 : 200;
  for (const c of CASES) {
    process.stdout.write(`${c.name}: 2 nodes, ${pairs} devices on A, ${pairs} apps on B\n`);
    for (const r of await measureCase(c, pairs)) process.stdout.write(`  ${r.what}: ${r.value}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ short: process.argv.includes('--short') });
}
