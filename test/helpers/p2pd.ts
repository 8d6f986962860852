/**
 * Starts `p2pd serve` as a real process (the way a user runs it) on free ports, waits until its
 * HTTP side is healthy, and stops it. Its stdout/stderr are kept for the failure message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const P2PD_BIN = `${ROOT}bin/p2pd.js`;

/**
 * How long a helper waits for a process it started to be ready (p2pd healthy, a device online,
 * Chromium up): a hang guard, not a speed check (start-up time is the bench's business). A cold
 * Node start took 16 s on this 2-core machine at load average 24, so 20 s guards ran out with
 * nothing wrong.
 */
export const STARTUP_TIMEOUT_MS = 60_000;

export interface P2pdProcess {
  readonly child: ChildProcess;
  readonly httpUrl: string;
  readonly port: number;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Extra `serve` options. --http, --port, --mqtt and --log-level are set unless given here. */
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly port?: number;
  readonly workers?: number;
  /** Default STARTUP_TIMEOUT_MS. */
  readonly readyTimeoutMs?: number;
  /**
   * Run inside this network namespace (`ip netns exec`; see netns.ts). Give `--http` with the
   * namespace's address: `httpUrl` names the --http host unless it is a wildcard (then 127.0.0.1).
   */
  readonly netns?: string;
  /** The process's open-file limit (`ulimit -n`, soft and hard), as a host sized for fewer clients has. */
  readonly openFiles?: number;
}

/** A port taken between choosing and binding it: a start with other free ports may succeed. */
const portTaken = (err: unknown): boolean => /EADDRINUSE|already in use|PORT_IN_USE/.test(String(err));

/**
 * Runs `start` again (at most 4 tries) while it fails because a port it chose was taken between
 * choosing and binding it; `start` must choose its free ports anew each time.
 */
export async function retryTakenPorts<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 4 || !portTaken(err)) throw err;
    }
  }
}

/**
 * Starts p2pd; when a port this helper chose was taken before p2pd bound it, starts again on
 * other free ports. Ports the caller gave are the caller's to retry (retryTakenPorts).
 */
export function startP2pd(opts: StartOptions = {}): Promise<P2pdProcess> {
  return retryTakenPorts(() => startOnce(opts));
}

async function startOnce(opts: StartOptions): Promise<P2pdProcess> {
  const args = [...(opts.args ?? [])];
  const has = (name: string): boolean => args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  const port = opts.port ?? (await freePort());
  const httpPort = await freePort();
  if (!has('port')) args.push('--port', String(port));
  if (!has('listen')) args.push('--listen', '127.0.0.1');
  if (!has('http')) args.push('--http', `127.0.0.1:${httpPort}`);
  if (!has('mqtt')) args.push('--mqtt', `127.0.0.1:${await freePort()}`);
  if (!has('workers')) args.push('--workers', String(opts.workers ?? 1));
  if (!has('log-level')) args.push('--log-level', 'warn');
  if (!has('relay-ports')) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    args.push('--relay-ports', `${base}-${base + 999}`);
  }
  const command = [process.execPath, P2PD_BIN, 'serve', ...args];
  // `exec` keeps the shell's pid for p2pd: signals reach it.
  if (opts.openFiles !== undefined) command.unshift('sh', '-c', 'ulimit -n "$0" && exec "$@"', String(opts.openFiles));
  // `ip netns exec` execs the command: the child is p2pd itself, and signals reach it.
  if (opts.netns !== undefined) command.unshift('ip', 'netns', 'exec', opts.netns);
  const child = spawn(command[0] as string, command.slice(1), { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const http = args[args.indexOf('--http') + 1] ?? `127.0.0.1:${httpPort}`;
  const colon = http.lastIndexOf(':');
  const givenHost = http.slice(0, colon).replace(/^\[|\]$/g, '');
  const urlHost = givenHost === '0.0.0.0' || givenHost === '::' || givenHost === '' ? '127.0.0.1' : givenHost;
  const httpUrl = `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${http.slice(colon + 1)}`;
  const until = Date.now() + (opts.readyTimeoutMs ?? STARTUP_TIMEOUT_MS);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`p2pd exited with ${child.exitCode}:\n${out}`);
    try {
      const r = await fetch(`${httpUrl}/healthz`);
      if (r.ok) break;
    } catch { /* not yet */ }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`p2pd did not become healthy:\n${out}`);
    }
    await sleep(100);
  }
  return {
    child,
    httpUrl,
    port,
    output: () => out,
    stop: (signal = 'SIGTERM') => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
      child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
      child.kill(signal);
    }),
  };
}
