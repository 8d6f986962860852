/**
 * `npm run bench -- scale`: the scale-out shape of docs/signaling.md "One broker across nodes" on
 * one machine — N `p2pd serve --roles signal,api` nodes (and one TURN node for placement) on a
 * Redis Cluster of 3 masters, and light MQTT clients (bench/lib/mqttLite.ts) in several load
 * processes, each app on another node than its device. Measures:
 *
 * - connections held with keepalives, ramped up step by step while the steps hold;
 * - offers across the fabric: offer→answer P50/P95/P99, CPU per node, broker memory per connection;
 * - session create P95 (POST /v1/sessions) with many live sessions in Redis and the sweeper on;
 * - SIGKILL to one node: how long until its clients are back on other nodes, sessions lost,
 *   offers acknowledged (PUBACK) and then never delivered.
 *
 * Full: 8 nodes (the 7 left after the kill must hold 100,000 connections within each node's
 * `--mqtt-max-connections`: 17,500 at this machine's 20,000 open files; docs/signaling.md
 * "Connections per node"), steps of 10,000 connections up to 100,000 (`--max-connections=N` stops there),
 * 100,000 live sessions; writes the table into docs/performance.md "Scale-out". Short (CI): 3
 * nodes, 3,000 connections, one kill.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHs256Signer } from '../src/auth/token.ts';
import { newSession } from '../src/session/model.ts';
import { defaultMaxConnections, openFileLimit } from '../src/server/openFiles.ts';
import { RedisSessionStore } from '../src/session/redisStore.ts';
import { ROOT, ask, cpuSeconds, percentile, start, treeRss, waitFor, untilHealthy, type Started } from './lib/proc.ts';
import { freePort } from '../test/helpers/ports.ts';
import { haveRedis, redisCli, startRedisCluster, type RedisCluster } from '../test/helpers/redis.ts';

const SECRET = 'bench-scale-secret-0123456789abcdef';
const HOST = '127.0.0.1';
const KEEPALIVE_SEC = 30;
/** The ramp stops after a step that took longer than this (logins too slow to go on) … */
const STEP_BUDGET_SEC = 240;
/** … or once the nodes hold this much memory (the machine is shared). */
const RSS_BUDGET_BYTES = 10 * 2 ** 30;
/** … or once the whole ramp has taken this long. */
const RAMP_BUDGET_SEC = 420;

interface Node {
  readonly proc: Started;
  readonly httpUrl: string;
  readonly mqttUrl: string;
  readonly pid: number;
}

interface Plan {
  readonly nodes: number;
  /** Connection counts to ramp through (each step adds pairs until the count). */
  readonly steps: readonly number[];
  readonly workers: number;
  readonly liveSessions: number;
  /** Pairs with a session that send offers. */
  readonly offerPairs: number;
  readonly offerRate: number;
  readonly offerSec: number;
  readonly creates: number;
}

const FULL: Plan = { nodes: 8, steps: [10_000, 20_000, 40_000, 60_000, 80_000, 100_000], workers: 8, liveSessions: 100_000, offerPairs: 2000, offerRate: 1000, offerSec: 10, creates: 1000 };
const SHORT: Plan = { nodes: 3, steps: [3000], workers: 2, liveSessions: 10_000, offerPairs: 300, offerRate: 300, offerSec: 5, creates: 200 };

async function startNode(args: readonly string[]): Promise<Node> {
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const stunPort = await freePort();
  const proc = start(process.execPath, [join(ROOT, 'bin/p2pd.js'), 'serve', '--workers', '1', '--port', String(stunPort), '--listen', HOST,
    '--http', `${HOST}:${httpPort}`, '--mqtt', `${HOST}:${mqttPort}`, '--jwt-secret', SECRET, '--auth-secret', 'bench-scale-turn', '--log-level', 'error', ...args], { quiet: false, env: process.env.P2PD_BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.P2PD_BENCH_NODE_OPTIONS } : {} });
  const httpUrl = `http://${HOST}:${httpPort}`;
  await untilHealthy(httpUrl, 60_000);
  return { proc, httpUrl, mqttUrl: `mqtt://${HOST}:${mqttPort}`, pid: proc.child.pid as number };
}

/** The sum of one metric's samples (all labels matching `labels`) on a node; 0 when it does not answer. */
async function metricOn(node: Node, name: string, labels = ''): Promise<number> {
  try {
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\d+)`, 'gm'))) n += Number(m[1]);
    return n;
  } catch {
    return 0;
  }
}

const connectedOn = (node: Node): Promise<number> => metricOn(node, 'mqtt_clients_connected');
/** CONNECTs a node refused as busy (CONNACK 3: its logins in flight at their bound, or its connections). */
const refusedBusyOn = async (node: Node): Promise<number> =>
  await metricOn(node, 'mqtt_connections_refused_total', 'reason="logins_in_flight"') + await metricOn(node, 'mqtt_connections_refused_total', 'reason="max_connections"');

interface Status { up: number; total: number; down: number; cameBack: number[]; acked: number; lostAcked: number }

export async function run(opts: { short: boolean }): Promise<void> {
  if (!haveRedis()) {
    process.stdout.write('skip scale: redis-server not installed\n');
    return;
  }
  // `--max-connections=N`: stop the full ramp at N (a machine that cannot go further).
  const maxArg = process.argv.find((a) => a.startsWith('--max-connections='));
  const max = maxArg === undefined ? Infinity : Number(maxArg.split('=')[1]);
  const base = opts.short ? SHORT : FULL;
  // `--nodes=N`: another count of signaling nodes (at least 2: one is killed).
  const nodesArg = process.argv.find((a) => a.startsWith('--nodes='));
  const nodeCount = nodesArg === undefined ? base.nodes : Math.max(2, Number(nodesArg.split('=')[1]) || base.nodes);
  const plan = { ...base, nodes: nodeCount, steps: base.steps.filter((n) => n <= max).length > 0 ? base.steps.filter((n) => n <= max) : base.steps.slice(0, 1) };
  const out = (s: string): void => { process.stdout.write(`${s}\n`); };
  const rows: Array<[string, string]> = [];
  const row = (what: string, value: string): void => { rows.push([what, value]); out(`  ${what}: ${value}`); };

  // What the nodes hold at most: they inherit this process's limit (src/server/openFiles.ts).
  const openFiles = openFileLimit();
  const perNode = defaultMaxConnections(openFiles);
  const top = plan.steps.at(-1) ?? 0;
  const fitsAfterKill = perNode === 0 || (plan.nodes - 1) * perNode >= top;

  const redis = await startRedisCluster(3);
  const nodes: Node[] = [];
  const workers: ChildProcess[] = [];
  let turn: Node | undefined;
  const store = new RedisSessionStore({ urls: redis.urls, commandTimeoutMs: 10_000 });
  try {
    const common = ['--redis-url', redis.urls.join(','), '--heartbeat-interval', '2', '--sweep-interval', '60',
      '--mqtt-preauth-per-source', '1000000', '--rate-limit-token', '0', '--rate-limit-source', '0', '--max-sessions-per-app', '0', '--max-viewers', '0'];
    turn = await startNode([...common, '--roles', 'stun,turn']);
    nodes.push(...await Promise.all(Array.from({ length: plan.nodes }, () => startNode([...common, '--roles', 'signal,api']))));
    const probe = await createHs256Signer(SECRET).sign({ sub: 'bench-probe', role: 'device' });
    await waitFor(async () => {
      const r = await fetch(`${nodes[0]?.httpUrl}/v1/signaling`, { headers: { authorization: `Bearer ${probe}` } });
      return ((await r.json()) as { signaling: unknown[] }).signaling.length === Math.min(5, plan.nodes);
    }, 30_000, 'every node in the registry');
    out(`${plan.nodes} signaling nodes (--roles signal,api) + 1 TURN node on a Redis Cluster of 3 masters; ${plan.workers} load processes`);
    out(`  open-file limit ${openFiles ?? 'unknown'} per process: each node holds at most ${perNode === 0 ? 'any number of' : perNode.toLocaleString('en')} connections (--mqtt-max-connections' default)${fitsAfterKill ? '' : `; the ${plan.nodes - 1} nodes left after the kill cannot hold ${top.toLocaleString('en')}`}`);

    // Live sessions in Redis, last seen ahead of time: the sweeper scans them all and closes none.
    await store.ready();
    const nowSec = Math.floor(Date.now() / 1000);
    const t0 = performance.now();
    for (let i = 0; i < plan.liveSessions; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, plan.liveSessions - i) }, (_, j) => store.create(newSession({
        sessionId: `live-${i + j}`, deviceId: `ld${(i + j) % 50_000}`, appId: `la${(i + j) % 50_000}`, stunServer: 'stun:127.0.0.1:3478',
        turnNode: 'bench-turn', region: 'default', ttl: 86400, now: nowSec + 3600,
      }))));
    }
    out(`  ${plan.liveSessions.toLocaleString('en')} live sessions written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    for (let i = 0; i < plan.workers; i++) {
      const w = fork(join(ROOT, 'bench/lib/scaleWorker.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=2048'] });
      await new Promise<void>((resolve) => w.once('message', () => resolve()));
      workers.push(w);
    }
    const rssBase = nodes.reduce((a, n) => a + treeRss(n.pid), 0);
    // A node that exits before the kill ends the run: what it printed is above.
    let killing = false;
    const died = new Promise<never>((_, reject) => {
      for (const n of nodes) n.proc.child.once('exit', (code, signal) => { if (!killing) reject(new Error(`a node exited (${code ?? signal}) before the kill`)); });
    });
    died.catch(() => undefined);

    // The ramp: pairs are added in steps while every step holds.
    let pairsNow = 0;
    let held = 0;
    let limit = '';
    const rampStart = performance.now();
    for (const step of plan.steps) {
      const addPairs = step / 2 - pairsNow;
      const per = Math.ceil(addPairs / plan.workers);
      const ts = performance.now();
      const stepCalls = commandCalls(redis);
      const got = await Promise.race([died, Promise.all(workers.map((w, k) => ask<{ up: number; failed: number }>(w, {
        cmd: 'connect', nodes: nodes.map((n) => n.mqttUrl), secret: SECRET, first: pairsNow + k * per,
        count: Math.max(0, Math.min(per, addPairs - k * per)), keepaliveSec: KEEPALIVE_SEC, parallel: 25,
      }, 'connected')))]);
      const failed = got.reduce((a, g) => a + g.failed, 0);
      pairsNow += addPairs;
      const conns = got.reduce((a, g) => a + g.up, 0) * 2;
      const rss = nodes.reduce((a, n) => a + treeRss(n.pid), 0);
      out(`  step ${step.toLocaleString('en')}: ${conns.toLocaleString('en')} connections up in ${((performance.now() - ts) / 1000).toFixed(1)} s, ${failed} pairs failed; nodes' RSS ${(rss / 2 ** 20).toFixed(0)} MiB`);
      if (step === plan.steps[0]) row('Redis commands per login (the first step, per connection)', perEvent(stepCalls, commandCalls(redis), addPairs * 2));
      held = conns;
      if (failed > addPairs * 0.01) {
        limit = `the ramp stopped at ${step.toLocaleString('en')}: ${failed} pairs did not connect within 60 s`;
        break;
      }
      const stepSec = (performance.now() - ts) / 1000;
      if (stepSec > STEP_BUDGET_SEC) {
        limit = `the ramp stopped after ${step.toLocaleString('en')}: the step took ${stepSec.toFixed(0)} s (logins ${((addPairs * 2) / stepSec).toFixed(0)}/s; budget ${STEP_BUDGET_SEC} s)`;
        break;
      }
      const rampSec = (performance.now() - rampStart) / 1000;
      if (rampSec > RAMP_BUDGET_SEC && step !== plan.steps.at(-1)) {
        limit = `the ramp stopped after ${step.toLocaleString('en')}: ${rampSec.toFixed(0)} s of logins so far (${(step / rampSec).toFixed(0)}/s; budget ${RAMP_BUDGET_SEC} s)`;
        break;
      }
      if (rss > RSS_BUDGET_BYTES) {
        limit = `the ramp stopped after ${step.toLocaleString('en')}: the nodes hold ${(rss / 2 ** 30).toFixed(1)} GiB (budget ${RSS_BUDGET_BYTES / 2 ** 30} GiB of the machine's 24)`;
        break;
      }
    }
    // Held: every connection has had to send keepalives (a PINGREQ when idle half the keepalive).
    await sleep(KEEPALIVE_SEC * 1.2 * 1000);
    let statuses = await Promise.all(workers.map((w) => ask<Status>(w, { cmd: 'status' }, 'status')));
    const upAfterKeepalive = statuses.reduce((a, s) => a + s.up, 0);
    const counted = (await Promise.all(nodes.map(connectedOn))).reduce((a, b) => a + b, 0);
    const rssHeld = nodes.reduce((a, n) => a + treeRss(n.pid), 0);
    row('connections held (keepalive ' + KEEPALIVE_SEC + ' s, after ' + (KEEPALIVE_SEC * 1.2).toFixed(0) + ' s)', `${upAfterKeepalive.toLocaleString('en')} of ${held.toLocaleString('en')} (mqtt_clients_connected summed: ${counted.toLocaleString('en')})${limit ? `; ${limit}` : ''}`);
    row('broker memory per connection', `${((rssHeld - rssBase) / Math.max(1, upAfterKeepalive) / 1024).toFixed(1)} KiB (RSS delta of the ${plan.nodes} nodes / connections)`);

    // Sessions over MQTT for the pairs that signal, then offers across the fabric.
    const perW = Math.ceil(plan.offerPairs / plan.workers);
    const ses = await Promise.all(workers.map((w) => ask<{ ok: number; failed: number; ids: string[] }>(w, { cmd: 'sessions', count: perW }, 'sessions')));
    const sessionIds = ses.flatMap((s) => s.ids);
    out(`  ${sessionIds.length} sessions opened over MQTT (${ses.reduce((a, s) => a + s.failed, 0)} failed)`);
    const cpu0 = nodes.map((n) => cpuSeconds(n.pid));
    const calls0 = commandCalls(redis);
    const tOff = performance.now();
    const offers = await Promise.all(workers.map((w) => ask<{ rtts: number[]; offerLegs: number[]; loopP50Ms: number; loopP99Ms: number; sent: number; unanswered: number }>(w, { cmd: 'offers', ratePerSec: plan.offerRate / plan.workers, durationSec: plan.offerSec }, 'offers')));
    const offSec = (performance.now() - tOff) / 1000;
    const cpu = nodes.map((n, k) => (cpuSeconds(n.pid) - (cpu0[k] as number)) / offSec * 100);
    const rtts = offers.flatMap((o) => o.rtts);
    const p = (q: number): string => percentile(rtts, q).toFixed(1);
    row(`offers across the fabric (app and device on different nodes), ${plan.offerRate}/s for ${plan.offerSec} s`, `${rtts.length.toLocaleString('en')} answered (${(rtts.length / plan.offerSec).toFixed(0)}/s), ${offers.reduce((a, o) => a + o.unanswered, 0)} unanswered`);
    row('offer→answer P50 / P95 / P99', `${p(50)} / ${p(95)} / ${p(99)} ms (goal P95 < 50 ms: ${percentile(rtts, 95) < 50 ? 'met' : 'NOT met'})`);
    const legs = offers.flatMap((o) => o.offerLegs);
    row('of which offer → device (its persistent session: queued in Redis first) P50 / P95', `${percentile(legs, 50).toFixed(1)} / ${percentile(legs, 95).toFixed(1)} ms`);
    row('load processes\' event-loop delay during the offers (part of every round trip above), P50 / P99 of the worst', `${Math.max(...offers.map((o) => o.loopP50Ms)).toFixed(1)} / ${Math.max(...offers.map((o) => o.loopP99Ms)).toFixed(1)} ms`);
    row('Redis commands per offer and its answer (all masters, during the offers)', perEvent(calls0, commandCalls(redis), rtts.length));
    row('CPU per node during the offers', cpu.map((c) => `${c.toFixed(0)} %`).join(', ') + ' of one core');

    // Session creates over HTTP with the live sessions in Redis and the sweeper on.
    const creator = await createHs256Signer(SECRET).sign({ sub: 'bench-creator', role: 'app', devices: ['*'], ttlSec: 7200 });
    const createMs: number[] = [];
    let createFailed = 0;
    let c = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (c < plan.creates) {
        const k = c++;
        const node = nodes[k % nodes.length] as Node;
        const t = performance.now();
        // A device that is online (the service refuses sessions to devices it knows offline).
        const r = await fetch(`${node.httpUrl}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${creator}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: `sd${(k * 7919) % pairsNow}` }) });
        await r.arrayBuffer();
        if (r.status === 201) createMs.push(performance.now() - t);
        else createFailed++;
      }
    }));
    const openNow = await patiently(() => store.countOpen());
    row(`session create (POST /v1/sessions, 10 at a time) with ${openNow.toLocaleString('en')} open sessions in Redis, sweeper on`, `P50 ${percentile(createMs, 50).toFixed(1)} / P95 ${percentile(createMs, 95).toFixed(1)} ms, ${createFailed} failed`);

    // SIGKILL one node while offers go on: who comes back where, and what was lost.
    const victim = nodes[0] as Node;
    const onVictim = await connectedOn(victim);
    const openBefore = await patiently(() => store.countOpen());
    const survivors = nodes.filter((n) => n !== victim);
    const refusedBefore = (await Promise.all(survivors.map(refusedBusyOn))).reduce((a, b) => a + b, 0);
    const markedAt = Date.now();
    await Promise.all(workers.map((w) => ask(w, { cmd: 'mark' }, 'marked')));
    const during = Promise.all(workers.map((w) => ask<{ rtts: number[]; sent: number; unanswered: number }>(w, { cmd: 'offers', ratePerSec: plan.offerRate / 4 / plan.workers, durationSec: 20 }, 'offers')));
    await sleep(2000);
    killing = true;
    const killedAt = Date.now();
    process.kill(-victim.pid, 'SIGKILL');
    let backAll = false;
    const giveUpAt = killedAt + 60_000;
    while (Date.now() < giveUpAt) {
      await sleep(250);
      statuses = await Promise.all(workers.map((w) => ask<Status>(w, { cmd: 'status' }, 'status')));
      const down = statuses.reduce((a, s) => a + s.down, 0);
      const back = statuses.reduce((a, s) => a + s.cameBack.length, 0);
      if (Date.now() - killedAt > 3000 && down === 0 && back > 0) {
        backAll = true;
        break;
      }
    }
    await during;
    await sleep(5000);
    statuses = await Promise.all(workers.map((w) => ask<Status>(w, { cmd: 'status' }, 'status')));
    // cameBack is measured from the mark, just before the kill.
    const sinceKill = statuses.flatMap((s) => s.cameBack).map((ms) => ms - (killedAt - markedAt));
    const upAfter = statuses.reduce((a, s) => a + s.up, 0);
    row(`SIGKILL to one node (${onVictim.toLocaleString('en')} connections on it)`, `${sinceKill.length.toLocaleString('en')} clients back on other nodes${backAll ? '' : ' (NOT all within 60 s)'}: P50 ${percentile(sinceKill, 50).toFixed(0)} / P99 ${percentile(sinceKill, 99).toFixed(0)} / max ${Math.max(0, ...sinceKill).toFixed(0)} ms after the kill (goal < 10 s: ${Math.max(0, ...sinceKill) < 10_000 && backAll ? 'met' : 'NOT met'}); ${upAfter.toLocaleString('en')} of ${upAfterKeepalive.toLocaleString('en')} connections up after`);
    const refusedBusy = (await Promise.all(survivors.map(refusedBusyOn))).reduce((a, b) => a + b, 0) - refusedBefore;
    row('logins the other nodes refused as busy (CONNACK 3: logins in flight, or --mqtt-max-connections held) after the kill', `${refusedBusy.toLocaleString('en')} (${(refusedBusy / Math.max(1, sinceKill.length)).toFixed(1)} per client that came back)`);
    const acked = statuses.reduce((a, s) => a + s.acked, 0);
    const lostAcked = statuses.reduce((a, s) => a + s.lostAcked, 0);
    row('offers acknowledged (PUBACK) and then never delivered', `${lostAcked} of ${acked.toLocaleString('en')} (must be 0)`);

    // Read after the kill's rows, so that a Redis still busy with the reconnections cannot lose them.
    try {
      const openAfter = await patiently(() => store.countOpen());
      let missing = 0;
      for (const id of sessionIds) {
        const s = await patiently(() => store.get(id));
        if (!s || s.status === 'closed') missing++;
      }
      row('sessions lost', `${missing} of the ${sessionIds.length} signaling sessions; open sessions in Redis ${openBefore.toLocaleString('en')} before, ${openAfter.toLocaleString('en')} after (must not drop)`);
    } catch (err) {
      row('sessions lost', `not read: the bench's own reads of Redis failed for 30 s after the kill (${String(err)})`);
    }

    const table = ['| measured | result |', '|---|---|', ...rows.map(([w, v]) => `| ${w} | ${v} |`)].join('\n');
    out(`\n${table}`);
    if (!opts.short) writeSection(plan, table, limit ? `\n${limit}.\n` : '');
  } finally {
    await Promise.all(workers.map((w) => ask(w, { cmd: 'close' }, 'closed').catch(() => undefined)));
    for (const w of workers) w.kill();
    await store.shutdown().catch(() => undefined);
    await Promise.allSettled([...nodes.map((n) => n.proc.stop()), turn?.proc.stop()]);
    await redis.stop();
  }
}

/**
 * A read of the bench's own that a Redis Cluster busy with 100,000 connections may time out
 * (10 s): tried up to 10 times, 3 s apart, so that the run's results are not lost to it.
 */
async function patiently<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 10) throw err;
      await sleep(3000);
    }
  }
}

/** Calls per Redis command, summed over the cluster's masters (`INFO commandstats`). */
function commandCalls(redis: RedisCluster): Map<string, number> {
  const calls = new Map<string, number>();
  for (const s of redis.servers) {
    for (const m of redisCli(s.port, 'info', 'commandstats').matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
      calls.set(m[1] as string, (calls.get(m[1] as string) ?? 0) + Number(m[2]));
    }
  }
  return calls;
}

/** The commands between two readings, per event (an offer, a login): the figure load cannot move. */
function perEvent(before: Map<string, number>, after: Map<string, number>, events: number): string {
  const per: Array<[string, number]> = [];
  for (const [cmd, n] of after) {
    const d = (n - (before.get(cmd) ?? 0)) / Math.max(1, events);
    if (d >= 0.05 && cmd !== 'info') per.push([cmd, d]);
  }
  per.sort((a, b) => b[1] - a[1]);
  const total = per.reduce((a, [, d]) => a + d, 0);
  return `${total.toFixed(1)} (${per.map(([c, d]) => `${c} ${d.toFixed(1)}`).join(', ')})`;
}

/**
 * Writes this run's table into docs/performance.md "Scale-out", under the heading of its size:
 * one table per size, so a run at 40,000 does not erase the last run at 100,000.
 */
function writeSection(plan: Plan, table: string, notes: string): void {
  const file = join(ROOT, 'docs/performance.md');
  const doc = readFileSync(file, 'utf8');
  const head = '## Scale-out (`npm run bench -- scale`)';
  const size = plan.steps.at(-1) ?? 0;
  const command = `npm run bench -- scale${size === FULL.steps.at(-1) ? '' : ` --max-connections=${size}`}${plan.nodes === FULL.nodes ? '' : ` --nodes=${plan.nodes}`}`;
  const sub = `### ${size.toLocaleString('en')} connections`;
  const subBody = `${sub}\n\nCommand: \`${command}\`. Written by the last run of this size (${new Date().toISOString().slice(0, 10)}).\n\n${table}\n${notes}`;
  const intro = `${head}\n\n${plan.nodes} \`p2pd serve --roles signal,api\` nodes and one TURN node (for session placement) on a Redis Cluster of 3 masters (the broker fabric, docs/signaling.md "One broker across nodes"), light MQTT clients (bench/lib/mqttLite.ts, the SDK's reconnection rules) in ${plan.workers} load processes; each device on node i, its app on node i+1. All on one 2-core machine (shared with other work), each process limited to ${openFileLimit() ?? 'unknown'} open files.`;
  const section = partOf(doc, head) ?? intro;
  writeFileSync(file, replacePart(doc, head, replacePart(section, sub, subBody)));
}

/** Where the part of markdown `text` under `heading` starts and ends (at the next heading of its level or above). */
function partBounds(text: string, heading: string): [number, number] | undefined {
  const at = text.startsWith(`${heading}\n`) ? 0 : text.indexOf(`\n${heading}\n`) + 1;
  if (at === 0 && !text.startsWith(`${heading}\n`)) return undefined;
  const hashes = heading.slice(0, heading.indexOf(' '));
  const ends = Array.from({ length: hashes.length }, (_, i) => text.indexOf(`\n${'#'.repeat(i + 1)} `, at + heading.length)).filter((i) => i >= 0);
  return [at, ends.length > 0 ? Math.min(...ends) + 1 : text.length];
}

function partOf(text: string, heading: string): string | undefined {
  const b = partBounds(text, heading);
  return b === undefined ? undefined : text.slice(b[0], b[1]).trimEnd();
}

/** `text` with the part under `heading` replaced by `body` (a blank line after it), or `body` appended. */
function replacePart(text: string, heading: string, body: string): string {
  const b = partBounds(text, heading);
  if (b === undefined) return `${text.trimEnd()}\n\n${body.trimEnd()}\n`;
  const rest = text.slice(b[1]);
  return `${text.slice(0, b[0])}${body.trimEnd()}\n${rest === '' ? '' : `\n${rest}`}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ short: process.argv.includes('--short') });
}
