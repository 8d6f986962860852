/**
 * Time as the SDK's connection logic sees it, handed in so each rule runs on fake time in its
 * unit test (the way MQTT.js hands its KeepaliveManager a timer): wall-clock milliseconds, a
 * monotonic clock for round trips, and timers (holePunch.ts's `Timers`, plus intervals).
 */
import type { Timers } from './holePunch.ts';

export interface Clock extends Timers {
  /** Unix milliseconds. */
  now(): number;
  /** Monotonic, sub-millisecond: for round trips. */
  mono(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  mono: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

/** Resolves after `ms` on `clock` (at once for ms <= 0). */
export const sleepOn = (clock: Clock, ms: number): Promise<void> =>
  new Promise((r) => { clock.setTimeout(r, Math.max(0, ms)); });
