/**
 * Waiting for a connection's state to reach a condition: `waitFor` resolves when its check holds
 * (re-checked on every `poke`, which the owner calls on each event), rejects at its deadline, on
 * its own failure check, or with what `failAll` or `close` hand every waiter.
 */
import type { Clock } from './clock.ts';
import { closedError, timeout, type SdkError } from './errors.ts';

interface Waiter {
  readonly check: () => boolean;
  readonly resolve: () => void;
  readonly reject: (err: SdkError) => void;
}

export class Waiters {
  private readonly clock: Clock;
  private readonly waiters = new Set<Waiter>();
  private readonly later = new Set<unknown>();
  private closed = false;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Resolves when `check()` holds, rejects at `deadline` or on `failed()`. */
  waitFor(check: () => boolean, deadline: number, what: string, failed?: () => SdkError | undefined): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const ms = Math.max(0, deadline - this.clock.now());
      const timer = this.clock.setTimeout(() => finish(timeout(`waiting for ${what}`, ms)), ms);
      const waiter: Waiter = {
        check: () => {
          if (check()) return true;
          const err = failed?.();
          if (err) finish(err);
          return false;
        },
        resolve: () => finish(),
        reject: (err) => finish(err),
      };
      const finish = (err?: SdkError): void => {
        if (!this.waiters.delete(waiter)) return;
        this.clock.clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.add(waiter);
    });
  }

  /** Re-checks every waiter. */
  poke(): void {
    for (const w of [...this.waiters]) if (w.check()) w.resolve();
  }

  /** Re-checks every waiter `ms` from now (a check that depends on time passing). */
  pokeLater(ms: number): void {
    if (this.closed) return;
    const t = this.clock.setTimeout(() => { this.later.delete(t); this.poke(); }, ms);
    this.later.add(t);
  }

  failAll(err: SdkError): void {
    for (const w of [...this.waiters]) w.reject(err);
  }

  /** Every waiter fails with CLOSED, and so does every later one. */
  close(): void {
    this.closed = true;
    this.failAll(closedError());
    for (const t of this.later) this.clock.clearTimeout(t);
    this.later.clear();
  }
}
