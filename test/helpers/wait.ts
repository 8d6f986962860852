/**
 * Waits on something another process learns asynchronously (a metric, a registry view, a state):
 * polls `check` every 50 ms until it holds, bounded by `timeoutMs` — an explicit wait on the
 * outcome, never a sleep sized for a quiet machine.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}
