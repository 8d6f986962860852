/**
 * Explicit waits on an outcome, bounded in time — never a sleep sized for a quiet machine:
 * - eventually(): something another process learns asynchronously (a metric, a registry view, a
 *   state), polled every 50 ms until it holds;
 * - nextEvent(): the first value an in-process event hands to `register`'s callback.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

export function nextEvent<T>(what: string, register: (done: (v: T) => void) => void, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not within ${timeoutMs} ms: ${what}`)), timeoutMs);
    register((v) => { clearTimeout(timer); resolve(v); });
  });
}
