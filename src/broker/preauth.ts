/**
 * Connections per source that have not logged in yet. Before login a connection costs us a
 * socket, a parser and a connect timer, and its owner has shown nothing; one source may hold
 * only a few of them at once (`--mqtt-preauth-per-source`). A slot is released once, at login or
 * at close, whichever comes first.
 *
 * IPv6 sources count per /64: one host usually holds a whole /64 (RFC 6177) and could otherwise
 * pick a fresh address for every connection.
 */
import { sourceKey as httpSourceKey } from '../api/rateLimit.ts';

export class PreauthLimiter {
  private readonly perSource = new Map<string, number>();
  private readonly maxPerSource: number;

  constructor(maxPerSource: number) {
    this.maxPerSource = maxPerSource;
  }

  /** A slot for one connection from `address`; undefined when the source holds its maximum. */
  acquire(address: string | undefined): (() => void) | undefined {
    const key = sourceKey(address);
    const held = this.perSource.get(key) ?? 0;
    if (held >= this.maxPerSource) return undefined;
    this.perSource.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.perSource.get(key) ?? 1) - 1;
      if (left > 0) this.perSource.set(key, left);
      else this.perSource.delete(key);
    };
  }

  /** Connections of this source not logged in yet. */
  heldBy(address: string): number {
    return this.perSource.get(sourceKey(address)) ?? 0;
  }
}

/** The counting key of a source address: the HTTP budgets' (api/rateLimit.ts), IPv6 by its /64. */
export function sourceKey(address: string | undefined): string {
  return address === undefined ? '' : httpSourceKey(address);
}
