/**
 * Fake time for the SDK's unit tests (src/sdk/clock.ts): nothing fires until the test advances
 * the clock; `advance` runs the due timers in order and lets the promises they settle run
 * before the next, so async rules (a resend, a restart loop) play out as they would in real time.
 */
import type { Clock } from '../../src/sdk/clock.ts';

export interface FakeClock extends Clock {
  advance(ms: number): Promise<void>;
  /** Timers and intervals still pending. */
  readonly pending: number;
}

/** Lets queued promise reactions (and what they queue) run. */
export const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
};

export function fakeClock(start = 1_000_000): FakeClock {
  let at = start;
  let seq = 0;
  const due = new Map<number, { at: number; fn: () => void; every: number | undefined }>();
  const next = (limit: number): [number, { at: number; fn: () => void; every: number | undefined }] | undefined => {
    let best: [number, { at: number; fn: () => void; every: number | undefined }] | undefined;
    for (const e of due) if (e[1].at <= limit && (!best || e[1].at < best[1].at)) best = e;
    return best;
  };
  return {
    now: () => at,
    mono: () => at - start,
    setTimeout(fn, ms) { const id = ++seq; due.set(id, { at: at + Math.max(0, ms), fn, every: undefined }); return id; },
    clearTimeout(h) { due.delete(h as number); },
    setInterval(fn, ms) { const id = ++seq; due.set(id, { at: at + ms, fn, every: ms }); return id; },
    clearInterval(h) { due.delete(h as number); },
    get pending() { return due.size; },
    async advance(ms) {
      const end = at + ms;
      await settle();
      for (let e = next(end); e; e = next(end)) {
        const [id, t] = e;
        at = Math.max(at, t.at);
        if (t.every === undefined) due.delete(id);
        else t.at += t.every;
        t.fn();
        await settle();
      }
      at = end;
      await settle();
    },
  };
}
