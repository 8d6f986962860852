/** Process helpers for benchmarks: start a server, wait for it, stop it, read its RSS. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface Started {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export function start(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): Started {
  const child = spawn(cmd, [...args], {
    stdio: opts.quiet === false ? 'inherit' : 'ignore',
    env: { ...process.env, ...opts.env },
    detached: true,
  });
  return {
    child,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      try { process.kill(-(child.pid as number), 'SIGTERM'); } catch { resolve(); }
      setTimeout(() => { try { process.kill(-(child.pid as number), 'SIGKILL'); } catch { /* gone */ } }, 3000).unref();
    }),
  };
}

/** Sum of resident set sizes (bytes) of a process and all its descendants. */
export function treeRss(pid: number): number {
  let total = 0;
  const walk = (p: number): void => {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) total += Number(m[1]) * 1024;
    } catch { /* exited */ }
    for (const c of childPids(p)) walk(c);
  };
  walk(pid);
  return total;
}

/** A process's children (none once it has exited). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** User and system CPU seconds (at Linux's USER_HZ of 100) of one process so far; 0 once it has exited. */
function processCpu(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: utime, stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** CPU seconds (user + system) of a process so far; 0 once it has exited. */
export function cpuSeconds(pid: number): number {
  const c = processCpu(pid);
  return c.user + c.sys;
}

/** User and system CPU seconds of a process and all its descendants so far (exited ones drop out). */
export function treeCpu(pid: number): { user: number; sys: number } {
  const total = { user: 0, sys: 0 };
  const walk = (p: number): void => {
    const c = processCpu(p);
    total.user += c.user;
    total.sys += c.sys;
    for (const child of childPids(p)) walk(child);
  };
  walk(pid);
  return total;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Waits until `GET {httpUrl}/healthz` answers 200 (p2pd has started). */
export function untilHealthy(httpUrl: string, timeoutMs: number): Promise<void> {
  return waitFor(async () => (await fetch(`${httpUrl}/healthz`).catch(() => undefined))?.ok === true, timeoutMs, 'p2pd to start');
}

/**
 * Compiles bench/c/NAME.c once into .bench/NAME (again when the source is newer); gcc is on every
 * machine of this project. `flags` go after the source (libraries).
 */
export function benchBinary(name: string, flags: readonly string[] = []): string {
  const src = join(ROOT, `bench/c/${name}.c`);
  const dir = join(ROOT, '.bench');
  const bin = join(dir, name);
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wno-deprecated-declarations', '-o', bin, src, ...flags]);
  }
  return bin;
}

/** The STUN load generator and bare C responder (bench/c/stunbench.c). */
export const stunbenchBinary = (): string => benchBinary('stunbench');

/** The TURN load client, echo peer and allocation holder (bench/c/turnbench.c; libcrypto, libssl-dev). */
export const turnbenchBinary = (): string => benchBinary('turnbench', ['-lcrypto']);

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Sends a load process a command over IPC; resolves with its `ev` answer, rejects on `failed`. */
export function ask<T>(w: ChildProcess, cmd: Record<string, unknown>, ev: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { ev: string; error?: string }): void => {
      if (m.ev === ev) { w.off('message', onMsg); resolve(m as T); }
      if (m.ev === 'failed') { w.off('message', onMsg); reject(new Error(m.error)); }
    };
    w.on('message', onMsg);
    w.send(cmd);
  });
}
