/**
 * The worker processes that share the STUN/TURN ports. The primary forks them with node:cluster,
 * restarts one that dies (unless stopping), asks them for their metrics and forwards control
 * messages (releasing a session's allocations).
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../log.ts';
import type { TurnToPrimary } from '../turn/ipc.ts';
import { isWorkerMessage, type MetricsJson, type PrimaryToWorker, type WorkerStats, type WorkerToPrimary } from './ipc.ts';

export interface WorkerPoolOptions {
  readonly count: number;
  /** The worker entry module (absolute path). */
  readonly exec: string;
  /** Arguments and environment the worker builds its configuration from. */
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Node options of the worker processes (workerExecArgv). */
  readonly execArgv?: readonly string[];
  readonly logger: Logger;
  /**
   * Messages that are not replies (TURN reservations, auth failures); `reply` answers the sending
   * worker, `broadcast` tells every worker.
   */
  readonly onRequest?: (
    workerId: number, m: TurnToPrimary, reply: (answer: PrimaryToWorker) => void, broadcast: (m: PrimaryToWorker) => void,
  ) => void;
  /** A worker exited (whatever it held for others can be freed). */
  readonly onExit?: (workerId: number) => void;
}

/**
 * Largest young-generation semi-space of a STUN/TURN worker, MiB. Node 24 sizes it by the
 * machine's memory, up to 64 MiB (128 MiB of young generation per process), grows it when many
 * objects survive a scavenge — what a burst of Allocates does, each allocation's state surviving
 * — and keeps it grown: most of what a worker's RSS gained per allocation held (docs/performance.md
 * "TURN memory per allocation"). A worker's packet path allocates little, so a small young
 * generation costs only more frequent scavenges of few survivors.
 */
export const WORKER_SEMI_SPACE_MIB = 4;

/**
 * The Node options a worker runs with: the primary's, and WORKER_SEMI_SPACE_MIB unless the
 * operator set --max-semi-space-size there or in NODE_OPTIONS.
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /^--max[-_]semi[-_]space[-_]size\b/.test(a));
  return given ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`];
}

export class WorkerPool {
  private readonly opts: WorkerPoolOptions;
  private readonly workers = new Set<Worker>();
  private stopping = false;
  private nextRequestId = 1;
  private readonly pending = new Map<number, { left: number; results: unknown[]; done: (r: unknown[]) => void }>();

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.workers.size;
  }

  /** Forks every worker and resolves once each has bound its sockets. */
  async start(): Promise<void> {
    cluster.setupPrimary({ exec: this.opts.exec, args: [...this.opts.args], execArgv: [...(this.opts.execArgv ?? process.execArgv)], silent: false });
    await Promise.all(Array.from({ length: this.opts.count }, () => this.fork()));
  }

  private fork(): Promise<void> {
    const worker = cluster.fork(this.opts.env);
    this.workers.add(worker);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: unknown) => {
        if (!isWorkerMessage(m)) return;
        if (m.t === 'ready') {
          ready = true;
          resolve();
        } else if (m.t === 'fatal') {
          reject(Object.assign(new Error(m.message), { code: m.code }));
        } else if (m.t === 'turn-reserve' || m.t === 'turn-release' || m.t === 'turn-auth-failure' || m.t === 'turn-sync' || m.t === 'turn-usage') {
          this.opts.onRequest?.(worker.id, m, (answer) => { if (worker.isConnected()) worker.send(answer); }, (all) => this.broadcast(all));
        } else this.onReply(m);
      });
      worker.on('exit', (code, signal) => {
        this.workers.delete(worker);
        this.failPending();
        this.opts.onExit?.(worker.id);
        if (!ready) {
          reject(new Error(`worker exited before it was ready (code ${code}, signal ${signal})`));
          return;
        }
        if (this.stopping) return;
        this.opts.logger.error({ code, signal }, 'worker died; starting another');
        setTimeout(() => {
          if (!this.stopping) this.fork().catch((err: unknown) => this.opts.logger.error({ err }, 'worker restart failed'));
        }, 500).unref();
      });
    });
  }

  private onReply(m: Extract<WorkerToPrimary, { id: number }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    p.results.push(m.data);
    if (--p.left === 0) {
      this.pending.delete(m.id);
      p.done(p.results);
    }
  }

  private failPending(): void {
    // A worker that died will never answer: settle what is pending with what we have.
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.done(p.results);
    }
  }

  private ask(t: 'metrics' | 'stats', timeoutMs = 2000): Promise<unknown[]> {
    const id = this.nextRequestId++;
    const live = [...this.workers].filter((w) => w.isConnected());
    if (live.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        resolve(p ? p.results : []);
      }, timeoutMs);
      this.pending.set(id, { left: live.length, results: [], done: (r) => { clearTimeout(timer); resolve(r); } });
      for (const w of live) w.send({ t, id } satisfies PrimaryToWorker);
    });
  }

  /** Every worker's metrics merged with the primary's own (counters and gauges summed). */
  async metrics(own: MetricsJson): Promise<string> {
    const fromWorkers = (await this.ask('metrics')) as MetricsJson[];
    return AggregatorRegistry.aggregate([own, ...fromWorkers]).metrics();
  }

  async stats(): Promise<WorkerStats> {
    const all = (await this.ask('stats')) as WorkerStats[];
    return all.reduce((a, s) => ({ allocations: a.allocations + s.allocations, bps: a.bps + s.bps }), { allocations: 0, bps: 0 });
  }

  broadcast(m: PrimaryToWorker): void {
    for (const w of this.workers) if (w.isConnected()) w.send(m);
  }

  /** Disconnects every worker (they close their sockets and exit) and waits for them. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopping = true;
    const exits = [...this.workers].map((w) => new Promise<void>((resolve) => {
      if (w.isDead()) return resolve();
      const timer = setTimeout(() => { w.process.kill('SIGKILL'); }, timeoutMs);
      w.once('exit', () => { clearTimeout(timer); resolve(); });
      w.disconnect();
    }));
    await Promise.all(exits);
  }
}
