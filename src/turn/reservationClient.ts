/**
 * How a TURN server reaches the node's book of ports and quotas (reservations.ts): directly when
 * it runs in the primary (--workers 1), over IPC from a worker process otherwise. The primary's
 * side of the IPC is {@link serveReservations}.
 */
import type { PrimaryToWorker, WorkerToPrimary } from '../transport/ipc.ts';
import { Reservations, type ReserveRequest, type ReserveResult } from './reservations.ts';

export interface ReservationClient {
  reserve(req: ReserveRequest): Promise<ReserveResult>;
  release(grant: number): void;
}

/** The book is in this process. */
export class LocalReservationClient implements ReservationClient {
  private readonly book: Reservations;

  constructor(book: Reservations) {
    this.book = book;
  }

  reserve(req: ReserveRequest): Promise<ReserveResult> {
    return Promise.resolve(this.book.reserve(req, 0, Date.now()));
  }

  release(grant: number): void {
    this.book.release(grant);
  }
}

const IPC_TIMEOUT_MS = 5000;
const NO_ANSWER: ReserveResult = { ok: false, code: 508, reason: 'the primary did not answer' };

/** The book is in the primary; requests go over the worker's IPC channel. */
export class IpcReservationClient implements ReservationClient {
  private readonly send: (m: WorkerToPrimary) => void;
  private readonly pending = new Map<number, (r: ReserveResult) => void>();
  private nextId = 1;

  constructor(send: (m: WorkerToPrimary) => void) {
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
  onAnswer(m: Extract<PrimaryToWorker, { t: 'turn-reserved' }>): void {
    const done = this.pending.get(m.rid);
    if (!done) return;
    this.pending.delete(m.rid);
    done(m.result);
  }
}

/** The primary's side: answers workers' requests from one book; frees a dead worker's share. */
export function serveReservations(book: Reservations): {
  onRequest(workerId: number, m: WorkerToPrimary, reply: (answer: PrimaryToWorker) => void): void;
  onExit(workerId: number): void;
} {
  return {
    onRequest(workerId, m, reply) {
      if (m.t === 'turn-reserve') reply({ t: 'turn-reserved', rid: m.rid, result: book.reserve(m.req, workerId, Date.now()) });
      else if (m.t === 'turn-release') book.release(m.grant);
    },
    onExit(workerId) {
      book.releaseOwner(workerId);
    },
  };
}
