/**
 * Real Redis for tests: Debian's `redis-server` on free loopback ports in a temporary directory,
 * as a single server or as a Redis Cluster of masters (`redis-cli --cluster create`). Every
 * server started here is killed when the test process exits, even on a crash.
 *
 *   const redis = await startRedis();       // redis.url, redis.stop(), redis.restart()
 *   const cluster = await startRedisCluster(); // cluster.urls (3 masters), cluster.stop()
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { freePort, freePortWith } from './ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './wait.ts';

const REDIS_SERVER = process.env.P2PD_REDIS_SERVER ?? 'redis-server';
const REDIS_CLI = process.env.P2PD_REDIS_CLI ?? 'redis-cli';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** True when redis-server can be run here (tests skip with a clear message otherwise). */
export function haveRedis(): boolean {
  const r = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

export const REDIS_MISSING = 'redis-server not found: apt-get install redis-server (or set P2PD_REDIS_SERVER)';

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => { s.destroy(); resolve(ok); };
    s.setTimeout(300, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL: an outage, not a shutdown). The port stays reserved for restart(). */
  kill(): Promise<void>;
  /** Starts the server again on the same port (empty unless it was started with persistence). */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
  /** Kills the server and removes its directory. */
  stop(): Promise<void>;
}

class Server implements RedisServer {
  readonly port: number;
  readonly url: string;
  private readonly dir: string;
  private readonly extraArgs: readonly string[];
  private child: ChildProcess | undefined;

  constructor(port: number, dir: string, extraArgs: readonly string[]) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = dir;
    this.extraArgs = extraArgs;
  }

  async start(): Promise<void> {
    const child = spawn(REDIS_SERVER, [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no',
      '--protected-mode', 'no', '--loglevel', 'warning', '--logfile', join(this.dir, 'redis.log'), ...this.extraArgs,
    ], { stdio: 'ignore' });
    this.child = child;
    children.add(child);
    child.once('exit', () => children.delete(child));
    await eventually(`redis-server on ${this.port}`, () => ping(this.port));
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  restart(): Promise<void> {
    return this.start();
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A single redis-server on a free port (or on `port`, e.g. one a p2pd was already told about). */
export async function startRedis(extraArgs: readonly string[] = [], port?: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-redis-'));
  const server = new Server(port ?? await freePort(), dir, extraArgs);
  try {
    await server.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

export interface RedisCluster {
  /** One URL per master, e.g. for `--redis-url` joined with commas. */
  readonly urls: readonly string[];
  readonly servers: readonly RedisServer[];
  stop(): Promise<void>;
}

/** A Redis Cluster of `masters` masters and no replicas, slots spread evenly, state ok. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  const stop = async (): Promise<void> => { await Promise.all(servers.map((s) => s.stop())); };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'p2pd-redis-cluster-'));
      const s = new Server(await freePortWith(10000), dir, [
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000',
      ]);
      servers.push(s);
      await s.start();
    }
    const create = spawnSync(REDIS_CLI, ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 20_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const s of servers) {
      await eventually(`cluster state ok on ${s.port}`, async () => {
        const r = spawnSync(REDIS_CLI, ['-p', String(s.port), 'cluster', 'info'], { encoding: 'utf8' });
        return r.stdout.includes('cluster_state:ok');
      }, 15_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { urls: servers.map((s) => s.url), servers, stop };
}

/** Runs one redis-cli command against `port` and returns its output (for assertions). */
export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync(REDIS_CLI, ['-p', String(port), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}
