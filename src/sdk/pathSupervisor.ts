/**
 * Keeps an app's path alive (docs/client.md "The SDK"): during setup, a browser that declares ICE
 * failed before the device's last candidates arrived gets FAILED_GRACE_MS per new candidate and
 * then one ICE restart; once connected, ICE `failed`, `disconnected` for DISCONNECTED_GRACE_MS, or
 * pings unanswered for `livenessMs` start a recovery: ICE restarts, one attempt after another
 * (each at most RESTART_ATTEMPT_MS), until a ping through the device proves the path again or
 * `recoveryMs` is over. Errors the service or device send meanwhile are kept and reported if the
 * recovery fails; RECOVERY_FATAL ones end it at once.
 */
import { sleepOn, type Clock } from './clock.ts';
import { asSdkError, iceFailed, isSdkError, type SdkError } from './errors.ts';
import type { PeerConnectionState } from './rtc.ts';
import type { Waiters } from './waiters.ts';

export const DISCONNECTED_GRACE_MS = 2500;
export const FAILED_GRACE_MS = 1500;
export const RESTART_ATTEMPT_MS = 8000;
/** Errors that end a recovery at once: retrying cannot change them. */
export const RECOVERY_FATAL: readonly string[] = ['PEER_GONE', 'DEVICE_ERROR', 'AUTH_FAILED', 'FORBIDDEN'];
/** Pause between two failed recovery attempts (at most). */
const RETRY_PAUSE_MS = 1000;

export interface PathSupervisorOptions {
  readonly clock: Clock;
  readonly waiters: Waiters;
  readonly peer: { readonly connectionState: PeerConnectionState };
  readonly channelOpen: () => boolean;
  /** Whether the connection is set up (`connected`, not `connecting`, `reconnecting` or closed). */
  readonly connected: () => boolean;
  readonly connecting: () => boolean;
  readonly closed: () => boolean;
  /** One ICE restart: an offer with iceRestart, answered by `deadline`. */
  readonly restart: (deadline: number) => Promise<void>;
  /** A round trip through the device (a ping), within `timeoutMs`. */
  readonly probe: (timeoutMs: number) => Promise<unknown>;
  /** How long a lost path may take to come back (0: no recovery). */
  readonly recoveryMs: number;
  /** The setup's whole time, for its error message. */
  readonly setupTimeoutMs: number;
  /** The path is lost; a recovery starts. */
  readonly onLost: () => void;
  /** The path is back (after `probe` answered). */
  readonly onRestored: () => Promise<void>;
  readonly fail: (err: SdkError, reason: string) => void;
}

export class PathSupervisor {
  private readonly opts: PathSupervisorOptions;
  private readonly clock: Clock;
  private recovering = false;
  /** An error the service or device sent while recovering (reported if recovery fails). */
  private lastRecoveryError: SdkError | undefined;
  private disconnectTimer: unknown;
  private failedSince: number | undefined;
  private lastRemoteCandidateAt = 0;
  private lastPongAt = 0;

  constructor(opts: PathSupervisorOptions) {
    this.opts = opts;
    this.clock = opts.clock;
  }

  /** After the first answer: resolves once the path and the data channel are up, or rejects with ICE_FAILED. */
  async establish(deadline: number): Promise<void> {
    const { peer, waiters } = this.opts;
    let restarted = false;
    for (;;) {
      try {
        await waiters.waitFor(() => peer.connectionState === 'connected' && this.opts.channelOpen(), deadline,
          'ICE connectivity checks and DTLS', () => (this.failedForMs() >= FAILED_GRACE_MS ? iceFailed('no candidate pair worked (ICE failed)') : undefined));
        return;
      } catch (err) {
        // The answer came, but no candidate pair worked in time: that is ICE failing, not slowness.
        if (isSdkError(err, 'TIMEOUT')) throw iceFailed(`no working path within ${this.opts.setupTimeoutMs} ms of setup (ICE ${peer.connectionState})`);
        // A browser may give up before the device's last candidates (its relay) arrived; one
        // ICE restart, with every candidate known by then, usually finds the path.
        if (!isSdkError(err, 'ICE_FAILED') || restarted || deadline - this.clock.now() < RESTART_ATTEMPT_MS / 2) throw err;
        restarted = true;
        await this.opts.restart(deadline);
      }
    }
  }

  /** The connection is up: liveness counts from now. */
  up(): void {
    this.lastPongAt = this.clock.now();
  }

  /** A pong came back. */
  pong(): void {
    this.lastPongAt = this.clock.now();
  }

  /** A new candidate of the device's: a `failed` peer gets another FAILED_GRACE_MS. */
  remoteCandidate(): void {
    this.lastRemoteCandidateAt = this.clock.now();
    if (this.opts.peer.connectionState === 'failed') this.opts.waiters.pokeLater(FAILED_GRACE_MS + 10);
  }

  /** The peer connection's state changed. */
  peerState(s: PeerConnectionState): void {
    if (s === 'failed') this.opts.waiters.pokeLater(FAILED_GRACE_MS + 10);
    this.opts.waiters.poke();
    if (!this.opts.connected() || this.recovering) return;
    if (s === 'failed') {
      void this.recover('ICE failed');
    } else if (s === 'disconnected') {
      if (this.disconnectTimer !== undefined) return;
      this.disconnectTimer = this.clock.setTimeout(() => {
        this.disconnectTimer = undefined;
        const now = this.opts.peer.connectionState;
        if (now === 'disconnected' || now === 'failed') void this.recover('ICE disconnected');
      }, DISCONNECTED_GRACE_MS);
    }
  }

  /** Pings unanswered for `livenessMs` (0: never) mean the path is gone. */
  checkLiveness(livenessMs: number): void {
    if (livenessMs > 0 && this.clock.now() - this.lastPongAt > livenessMs) void this.recover(`no answer to pings for ${livenessMs} ms`);
  }

  /**
   * An error from the service or device while recovering: true when the recovery takes it (it
   * ends the attempt if it is PEER_GONE or DEVICE_ERROR, else it is reported if recovery fails).
   */
  heard(err: SdkError): boolean {
    if (!this.recovering) return false;
    // E.g. DEVICE_OFFLINE while the device restarts: the recovery loop decides.
    if (err.code === 'PEER_GONE' || err.code === 'DEVICE_ERROR') this.opts.waiters.failAll(err);
    else this.lastRecoveryError = err;
    return true;
  }

  /** ICE restarts until the path is back, or fails the connection. */
  async recover(reason: string): Promise<void> {
    const { clock, recoveryMs } = this.opts;
    if (this.recovering || this.opts.closed() || this.opts.connecting()) return;
    if (recoveryMs <= 0) {
      this.opts.fail(iceFailed(`the path was lost (${reason}) and recovery is off`), 'ice-failed');
      return;
    }
    this.recovering = true;
    this.lastRecoveryError = undefined;
    this.opts.onLost();
    const until = clock.now() + recoveryMs;
    let lastError: SdkError | undefined;
    while (!this.opts.closed() && clock.now() < until) {
      try {
        const attemptEnd = Math.min(until, clock.now() + RESTART_ATTEMPT_MS);
        await this.opts.restart(attemptEnd);
        await this.opts.waiters.waitFor(() => this.opts.peer.connectionState === 'connected', attemptEnd, 'ICE restart connectivity checks');
        // The state may never have left `connected` (a restart of a working path): only a round
        // trip through the device proves the path.
        await this.opts.probe(Math.max(1, attemptEnd - clock.now()));
        this.recovering = false;
        this.lastPongAt = clock.now();
        await this.opts.onRestored();
        return;
      } catch (err) {
        // A decisive answer (the device is back and does not know the session) wins over what an
        // earlier attempt heard (DEVICE_OFFLINE while the device was restarting).
        const thrown = asSdkError(err);
        lastError = RECOVERY_FATAL.includes(thrown.code) ? thrown : this.lastRecoveryError ?? thrown;
        if (this.opts.closed() || RECOVERY_FATAL.includes(lastError.code)) break;
        await sleepOn(clock, Math.min(RETRY_PAUSE_MS, until - clock.now()));
      }
    }
    this.recovering = false;
    if (this.opts.closed()) return;
    const err = lastError && lastError.code !== 'TIMEOUT'
      ? lastError
      : iceFailed(`the path was lost (${reason}) and could not be restored within ${recoveryMs} ms`);
    this.opts.fail(err, 'recovery-failed');
  }

  close(): void {
    if (this.disconnectTimer !== undefined) this.clock.clearTimeout(this.disconnectTimer);
    this.disconnectTimer = undefined;
  }

  /**
   * How long the peer has been `failed` with no new remote candidate: a stack may declare
   * failure when its first pairs fail (e.g. TURN refuses a host address) while better
   * candidates are still on their way; it gets FAILED_GRACE_MS to take them.
   */
  private failedForMs(): number {
    if (this.opts.peer.connectionState !== 'failed') {
      this.failedSince = undefined;
      return 0;
    }
    this.failedSince ??= this.clock.now();
    return this.clock.now() - Math.max(this.failedSince, this.lastRemoteCandidateAt);
  }
}
