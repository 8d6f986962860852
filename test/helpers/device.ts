/**
 * `p2pd device` as a real process (the simulated camera as users run it), with --json output:
 * start() resolves at its `online` line; its events are kept for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { jsonLines } from './jsonLines.ts';
import { P2PD_BIN, STARTUP_TIMEOUT_MS } from './p2pd.ts';

export interface DeviceProcess {
  readonly child: ChildProcess;
  readonly events: Array<Record<string, unknown>>;
  output(): string;
  /** Waits for an event of this kind (e.g. `viewer`). */
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `token` undefined: none given (the device asks the server for a development token). `netns`:
 * run inside that network namespace (`ip netns exec`, which execs: the child is the device).
 */
export async function startDevice(opts: {
  server: string; id: string; token: string | undefined; args?: readonly string[]; timeoutMs?: number; netns?: string; env?: NodeJS.ProcessEnv;
}): Promise<DeviceProcess> {
  const args = [P2PD_BIN, 'device', '--id', opts.id, '--server', opts.server, '--json', ...(opts.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, P2PD_TOKEN: opts.token };
  if (opts.token === undefined) delete env.P2PD_TOKEN;
  const child = opts.netns === undefined
    ? spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('ip', ['netns', 'exec', opts.netns, process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = jsonLines(child);
  const next = (event: string, timeoutMs = 15_000): Promise<Record<string, unknown>> =>
    lines.next((e) => e.event === event, timeoutMs, `device ${opts.id}: ${event} event`);
  const proc: DeviceProcess = {
    child,
    events: lines.events,
    output: lines.text,
    next,
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
