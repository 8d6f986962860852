/**
 * How a TURN server reaches the node's book of ports and quotas (reservations.ts): directly when
 * it runs in the primary (--workers 1), over IPC from a worker process otherwise. The primary's
 * side of the IPC is {@link serveReservations}. Before the book, the primary asks the session
 * store whether the credentials' session closed, and whose it is ({@link SessionGate}): that holds
 * across workers, nodes and restarts with Redis, where the in-memory set of heard closes
 * (closedSessions.ts) does not. A session's credentials ("<expiry>:<sessionId>") are charged to
 * the session's app under --principal-quota (docs/turn.md "REST credentials").
 */
import type { TurnToPrimary, TurnToWorker } from './ipc.ts';
import { Reservations, type ReserveRequest, type ReserveResult } from './reservations.ts';

/** A session in the store: its state ('unknown' for ids it does not hold: outside issuers, expired) and its app. */
export interface SessionFacts {
  readonly status: 'open' | 'closed' | 'unknown';
  readonly appId?: string | undefined;
}
export type SessionLookup = (sessionId: string) => Promise<SessionFacts>;

const UNKNOWN: SessionFacts = { status: 'unknown' };

/** A store that does not answer in this time lets the Allocate through (the heard closes still hold). */
const LOOKUP_TIMEOUT_MS = 1000;

/** Where the session store is plugged in once it runs (the TURN role starts before it). */
export class SessionGate {
  private lookup: SessionLookup | undefined;
  /** Lookups that failed or timed out (the Allocate went ahead). */
  failures = 0;

  set(lookup: SessionLookup): void {
    this.lookup = lookup;
  }

  async facts(sessionId: string): Promise<SessionFacts> {
    const lookup = this.lookup;
    if (lookup === undefined) return UNKNOWN;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<SessionFacts>((resolve) => {
        timer = setTimeout(() => {
          this.failures++;
          resolve(UNKNOWN);
        }, LOOKUP_TIMEOUT_MS);
      });
      return await Promise.race([lookup(sessionId), timeout]);
    } catch {
      this.failures++;
      return UNKNOWN;
    } finally {
      clearTimeout(timer);
    }
  }
}

const SESSION_CLOSED: ReserveResult = { ok: false, code: 401, reason: 'the session is closed', limit: 'session_closed' };

/**
 * The session check, then the book. Credentials that name no principal are charged to their
 * session's app; a session the store does not know (an outside issuer's "<expiry>:<userid>")
 * is a principal of its own, "p:#<id>", which no token sub can spell ('#' is not in a client id).
 */
async function admit(book: Reservations, gate: SessionGate | undefined, req: ReserveRequest, owner: number): Promise<ReserveResult> {
  if (req.sessionId === undefined) return book.reserve(req, owner, Date.now());
  const facts = gate === undefined ? UNKNOWN : await gate.facts(req.sessionId);
  if (facts.status === 'closed') return SESSION_CLOSED;
  if (req.principalKey !== undefined) return book.reserve(req, owner, Date.now());
  const principalKey = facts.appId !== undefined ? `p:${facts.appId}` : `p:#${req.sessionId}`;
  return book.reserve({ ...req, principalKey }, owner, Date.now());
}

export interface ReservationClient {
  reserve(req: ReserveRequest): Promise<ReserveResult>;
  release(grant: number): void;
}

/** The book is in this process. */
export class LocalReservationClient implements ReservationClient {
  private readonly book: Reservations;
  private readonly gate: SessionGate | undefined;

  constructor(book: Reservations, gate?: SessionGate) {
    this.book = book;
    this.gate = gate;
  }

  reserve(req: ReserveRequest): Promise<ReserveResult> {
    return admit(this.book, this.gate, req, 0);
  }

  release(grant: number): void {
    this.book.release(grant);
  }
}

const IPC_TIMEOUT_MS = 5000;
const NO_ANSWER: ReserveResult = { ok: false, code: 508, reason: 'the primary did not answer', limit: 'unavailable' };

/** The book is in the primary; requests go over the worker's IPC channel. */
export class IpcReservationClient implements ReservationClient {
  private readonly send: (m: TurnToPrimary) => void;
  private readonly pending = new Map<number, (r: ReserveResult) => void>();
  private nextId = 1;

  constructor(send: (m: TurnToPrimary) => void) {
    this.send = send;
  }

  reserve(req: ReserveRequest): Promise<ReserveResult> {
    const rid = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        resolve(NO_ANSWER);
      }, IPC_TIMEOUT_MS);
      this.pending.set(rid, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.send({ t: 'turn-reserve', rid, req });
    });
  }

  release(grant: number): void {
    this.send({ t: 'turn-release', grant });
  }

  /** Feed every `turn-reserved` message from the primary here. */
  onAnswer(m: Extract<TurnToWorker, { t: 'turn-reserved' }>): void {
    const done = this.pending.get(m.rid);
    if (!done) return;
    this.pending.delete(m.rid);
    done(m.result);
  }
}

/** The primary's side: answers workers' requests from one book; frees a dead worker's share. */
export function serveReservations(book: Reservations, gate?: SessionGate): {
  onRequest(workerId: number, m: TurnToPrimary, reply: (answer: TurnToWorker) => void): void;
  onExit(workerId: number): void;
} {
  // Worker ids are not reused (node:cluster counts up): a grant made for one that exited while
  // its session lookup was pending goes back at once.
  const exited = new Set<number>();
  return {
    onRequest(workerId, m, reply) {
      if (m.t === 'turn-reserve') {
        void admit(book, gate, m.req, workerId).then((result) => {
          if (exited.has(workerId)) {
            if (result.ok) book.release(result.grant);
            return;
          }
          reply({ t: 'turn-reserved', rid: m.rid, result });
        });
      } else if (m.t === 'turn-release') book.release(m.grant);
    },
    onExit(workerId) {
      exited.add(workerId);
      book.releaseOwner(workerId);
    },
  };
}
