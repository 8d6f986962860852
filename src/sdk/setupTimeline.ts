/**
 * When each step of an app's setup happened, in ms since `connect()` was called: the profile
 * behind `setupMs` (docs/client.md "Setup time"). A step is recorded the first time it happens;
 * an ICE restart during setup does not move it.
 *
 *   signaling        the broker connection is up (0 when it was handed in, already open)
 *   session          the service answered the session request
 *   offerSent        the first offer left
 *   answer           the device's answer arrived
 *   remoteCandidate  the device's first trickled candidate arrived
 *   iceConnected     a candidate pair worked (ICE `connected`)
 *   connected        DTLS is up (the peer connection is `connected`)
 *   channelOpen      the data channel is open (SCTP is up)
 */
export const SETUP_STEPS = [
  'signaling', 'session', 'offerSent', 'answer', 'remoteCandidate', 'iceConnected', 'connected', 'channelOpen',
] as const;

export type SetupStep = (typeof SETUP_STEPS)[number];
export type SetupPhases = Partial<Record<SetupStep, number>>;

export class SetupTimeline {
  private readonly at: SetupPhases = {};
  private readonly startedAt: number;
  private readonly now: () => number;

  constructor(startedAt: number, now: () => number) {
    this.startedAt = startedAt;
    this.now = now;
  }

  /** Records `step` now, unless it was recorded before. */
  mark(step: SetupStep, atMs: number = this.now()): void {
    if (this.at[step] === undefined) this.at[step] = Math.max(0, Math.round(atMs - this.startedAt));
  }

  /** The steps recorded so far, in setup order. */
  get phases(): SetupPhases {
    const out: SetupPhases = {};
    for (const s of SETUP_STEPS) if (this.at[s] !== undefined) out[s] = this.at[s];
    return out;
  }
}
