/**
 * Logins in flight on one node, and the logins waiting for one of them (`--mqtt-max-logins-in-flight`,
 * `--mqtt-max-logins-waiting`, `--mqtt-login-wait`; docs/signaling.md "Logins in flight"). A login
 * runs from its CONNECT to its CONNACK and the read of its session's queue right after; on the
 * broker fabric it costs Redis 6 to 16 commands (the client id's lease, the session's
 * subscriptions, will and queue). When a node dies its clients all log in at the others within a
 * second: unbounded, their commands queue in Redis past its timeout, the logins fail, and the
 * clients come back for more. The bound on logins in flight keeps the commands a node has
 * outstanding within what Redis answers in time.
 *
 * A login beyond the bound waits its turn, first come first served, for at most `maxWaitMs`: a
 * refusal (CONNACK 3, MQTT 3.1.1 §3.2.2.3) would send its client away to come back after its
 * backoff, and thousands of clients doing so each second cost the nodes more (a TCP connection, a
 * CONNECT and its CONNACK each time) than the logins themselves, while slots went unused between
 * the attempts (docs/performance.md "Scale-out"). What a stranger can make a node hold stays
 * bounded: at most `maxWaiting` logins wait, each at most `maxWaitMs`; a login beyond them is
 * refused at once, and one that waited `maxWaitMs` is refused then.
 *
 * A turn ends once, whichever comes first: the login done, refused, or its connection's end; a
 * turn that ends while waiting gives its place up. maxInFlight 0 = unbounded.
 */
export interface LoginGateOptions {
  readonly maxInFlight: number;
  /** Logins that may wait for a slot; 0 = none (a login beyond the bound is refused at once). */
  readonly maxWaiting?: number | undefined;
  /** The longest a login waits for a slot, ms. */
  readonly maxWaitMs?: number | undefined;
}

/** One login's turn at the gate. */
export interface LoginTurn {
  /** True once the login holds a slot; false when it waited `maxWaitMs` (or ended while waiting). */
  readonly granted: Promise<boolean>;
  /** It entered the queue (`granted` settles later); false: it holds a slot already. */
  readonly waits: boolean;
  /** Frees the slot, or the place in the queue; once, however often it is called. */
  end(): void;
}

type State = 'waiting' | 'holding' | 'done';

/** A turn and where it is; the gate moves it from waiting to holding when a slot frees. */
class Turn implements LoginTurn {
  state: State;
  readonly waits: boolean;
  readonly granted: Promise<boolean>;
  grant: (ok: boolean) => void = () => undefined;
  timer: NodeJS.Timeout | undefined;
  private readonly gate: LoginGate;

  constructor(gate: LoginGate, holding: boolean) {
    this.gate = gate;
    this.state = holding ? 'holding' : 'waiting';
    this.waits = !holding;
    this.granted = holding ? GRANTED : new Promise<boolean>((resolve) => { this.grant = resolve; });
  }

  end(): void {
    this.gate.end(this);
  }
}

const GRANTED: Promise<boolean> = Promise.resolve(true);

export class LoginGate {
  private held = 0;
  private readonly maxInFlight: number;
  private readonly maxWaiting: number;
  private readonly maxWaitMs: number;
  /** In arrival order (a Set iterates in insertion order and deletes in O(1)). */
  private readonly waiting = new Set<Turn>();

  constructor(opts: LoginGateOptions) {
    this.maxInFlight = opts.maxInFlight;
    this.maxWaiting = opts.maxWaiting ?? 0;
    this.maxWaitMs = opts.maxWaitMs ?? 0;
  }

  /** Logins holding a slot now. */
  get inFlight(): number {
    return this.held;
  }

  /** Logins waiting for a slot now. */
  get queued(): number {
    return this.waiting.size;
  }

  /** A turn for one login: a slot now, or a place in the queue; undefined when neither is left. */
  enter(): LoginTurn | undefined {
    if (this.maxInFlight === 0 || this.held < this.maxInFlight) {
      this.held++;
      return new Turn(this, true);
    }
    if (this.waiting.size >= this.maxWaiting) return undefined;
    const turn = new Turn(this, false);
    if (this.maxWaitMs > 0) {
      turn.timer = setTimeout(() => this.leave(turn, false), this.maxWaitMs);
      turn.timer.unref();
    }
    this.waiting.add(turn);
    return turn;
  }

  /** `turn.end()`: frees its slot (to the oldest waiter) or its place in the queue. */
  end(turn: Turn): void {
    if (turn.state === 'waiting') this.leave(turn, false);
    else if (turn.state === 'holding') {
      turn.state = 'done';
      this.release();
    }
  }

  private leave(turn: Turn, granted: boolean): void {
    if (!this.waiting.delete(turn)) return;
    clearTimeout(turn.timer);
    turn.state = granted ? 'holding' : 'done';
    turn.grant(granted);
  }

  /** A slot comes free: the oldest waiter takes it, or it is free. */
  private release(): void {
    const next = this.waiting.values().next();
    if (next.done === true) this.held--;
    else this.leave(next.value, true);
  }
}
