/**
 * Notices that this host's network changed (a phone moved from Wi-Fi to cellular, a laptop to
 * another network): its set of addresses is read every `intervalMs` on the injected clock, and a
 * change — an address gone or a new one — is told once. The app then restarts ICE at once
 * (docs/client.md "Network change") instead of waiting for its pings to go unanswered.
 */
import type { Clock } from './clock.ts';

export interface AddressWatchOptions {
  /** This host's addresses now (loopback and link-local left out by the caller). */
  readonly list: () => readonly string[];
  readonly clock: Clock;
  readonly intervalMs: number;
  readonly onChange: (added: readonly string[], removed: readonly string[]) => void;
}

/** Starts watching; returns the stop. */
export function watchAddresses(opts: AddressWatchOptions): () => void {
  let known = new Set(opts.list());
  const timer = opts.clock.setInterval(() => {
    let now: Set<string>;
    try {
      now = new Set(opts.list());
    } catch {
      return; // unreadable for a moment: judge at the next look
    }
    const added = [...now].filter((a) => !known.has(a));
    const removed = [...known].filter((a) => !now.has(a));
    known = now;
    if (added.length > 0 || removed.length > 0) opts.onChange(added, removed);
  }, opts.intervalMs);
  return () => opts.clock.clearInterval(timer);
}
