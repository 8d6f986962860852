/**
 * `p2pd device` as a real process (the simulated camera as users run it), with --json output:
 * start() resolves at its `online` line; its events are kept for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { P2PD_BIN, STARTUP_TIMEOUT_MS } from './p2pd.ts';

export interface DeviceProcess {
  readonly child: ChildProcess;
  readonly events: Array<Record<string, unknown>>;
  output(): string;
  /** Waits for an event of this kind (e.g. `viewer`). */
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `token` undefined: none given (the device asks the server for a development token). */
export async function startDevice(opts: { server: string; id: string; token: string | undefined; args?: readonly string[]; timeoutMs?: number }): Promise<DeviceProcess> {
  const args = [P2PD_BIN, 'device', '--id', opts.id, '--server', opts.server, '--json', ...(opts.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, P2PD_TOKEN: opts.token };
  if (opts.token === undefined) delete env.P2PD_TOKEN;
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let buf = '';
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch { /* not an event */ }
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  child.once('exit', () => { for (const w of waiters.splice(0)) w(); });
  const next = (event: string, timeoutMs = 15_000, from = 0): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`device ${opts.id}: no ${event} event within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = (): void => {
      const e = events.slice(from).find((x) => x.event === event);
      if (e) {
        clearTimeout(timer);
        resolve(e);
      } else if (child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`device ${opts.id} exited with ${child.exitCode}:\n${out}`));
      } else waiters.push(check);
    };
    check();
  });
  const proc: DeviceProcess = {
    child,
    events,
    output: () => out,
    next: (event, timeoutMs) => next(event, timeoutMs, 0),
    stop: (signal = 'SIGTERM') => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      const timer = setTimeout(() => child.kill('SIGKILL'), 6000);
      child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
      child.kill(signal);
    }),
  };
  try {
    await next('online', opts.timeoutMs ?? STARTUP_TIMEOUT_MS);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return proc;
}
