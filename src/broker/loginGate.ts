/**
 * Logins in flight on one node (`--mqtt-max-logins-in-flight`, docs/signaling.md "Logins in
 * flight"). A login runs from its CONNECT to its CONNACK and the read of its session's queue
 * right after; on the broker fabric it costs Redis about 16 commands (the client id's lease, the
 * session's subscriptions, will and queue). When a node dies its clients all log in at the others
 * within a second: unbounded, their commands queue in Redis past its 2 s timeout, the logins
 * fail, and the clients come back for more. A bound keeps the commands a node has outstanding
 * within what Redis answers in time; a CONNECT beyond it is refused at once (CONNACK 3, MQTT
 * 3.1.1 §3.2.2.3), which costs nothing, and its client returns after its backoff.
 *
 * A slot is released once, whichever comes first: the login done, refused, or its connection's
 * end. 0 = unbounded.
 */
export class LoginGate {
  private held = 0;
  private readonly maxInFlight: number;

  constructor(maxInFlight: number) {
    this.maxInFlight = maxInFlight;
  }

  /** Logins holding a slot now. */
  get inFlight(): number {
    return this.held;
  }

  /** A slot for one login; undefined while `maxInFlight` logins hold one. */
  acquire(): (() => void) | undefined {
    if (this.maxInFlight > 0 && this.held >= this.maxInFlight) return undefined;
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
    };
  }
}
