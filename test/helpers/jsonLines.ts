/**
 * A child process's JSON lines: what `p2pd device --json`, `p2pd connect --json` and the test
 * probes print, one event per line on stdout. Lines that are not JSON (logs) only join the text.
 */
import type { ChildProcess } from 'node:child_process';

export interface JsonLines {
  readonly events: Record<string, unknown>[];
  /** Everything the child printed, both streams. */
  text(): string;
  /** The first event matching `pred`, now or when it comes; rejects when the child exits first. */
  next(pred: (e: Record<string, unknown>) => boolean, timeoutMs: number, what?: string): Promise<Record<string, unknown>>;
}

export function jsonLines(child: ChildProcess): JsonLines {
  const events: Record<string, unknown>[] = [];
  let out = '';
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    out += d;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try { events.push(JSON.parse(line) as Record<string, unknown>); } catch { /* a log line */ }
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  child.once('exit', () => { for (const w of waiters.splice(0)) w(); });
  return {
    events,
    text: () => out,
    next: (pred, timeoutMs, what = 'such line') => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms:\n${out}`)), timeoutMs);
      const check = (): void => {
        const e = events.find(pred);
        if (e) {
          clearTimeout(timer);
          resolve(e);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer);
          reject(new Error(`exited with ${child.exitCode ?? child.signalCode} before ${what}:\n${out}`));
        } else waiters.push(check);
      };
      check();
    }),
  };
}
