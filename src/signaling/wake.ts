/**
 * Sleeping cameras (docs/operations.md "Sleeping cameras"): a session for a device that is
 * offline waits up to `--wake-timeout` for it to come online instead of failing at once with
 * DEVICE_OFFLINE. The first waiter of a device fires the wake hooks, once per wake: a retained
 * `wake` message on the device's own topic (p2p/signal/device/{sn}, which it subscribes to
 * anyway: a camera that connects sees it before it says `online`) and, with `--wake-webhook`, one
 * POST to the operator's push service (with a timeout, never retried). Presence going online
 * releases every waiter of that device; a waiter whose timeout runs out gets DEVICE_OFFLINE. When
 * a wake ends either way its retained message is cleared, so nothing held outlives its timeout.
 * Waiters are bounded per device and per node: past a bound the caller gets DEVICE_OFFLINE at
 * once, so a stranger with an app token cannot make the node hold unbounded state.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.ts';
import { wakeHookFailuresTotal, wakesTotal } from '../metrics/metrics.ts';
import { deviceOffline } from '../errors.ts';
import type { PresenceTracker } from './presence.ts';
import { SERVER_ID, deviceTopic } from './topics.ts';

/** When a wake was asked for and when the device came online (unix ms). */
export interface WakeResult {
  readonly requestedAt: number;
  readonly wokeAt: number;
}

export interface DeviceWakerOptions {
  readonly presence: PresenceTracker;
  /** How long a waiter waits (`--wake-timeout`). */
  readonly timeoutMs: number;
  /** `--wake-webhook`: where wake requests are POSTed. */
  readonly webhook?: string | undefined;
  /** Publishes the retained wake message (the signaling publisher). */
  readonly publish: (topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }) => Promise<void>;
  readonly log: Logger;
  /** Waiters per device, at most (default 16). */
  readonly maxPerDevice?: number;
  /** Waiters on this node, at most (default 1000). */
  readonly maxPerNode?: number;
  /** Longest wait for the webhook's answer (default 5 s, never more than the wake timeout). */
  readonly webhookTimeoutMs?: number;
  readonly nowMs?: () => number;
}

interface Waiter {
  readonly resolve: (r: WakeResult) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Wake {
  readonly requestedAt: number;
  readonly waiters: Set<Waiter>;
}

export class DeviceWaker {
  private readonly opts: DeviceWakerOptions;
  private readonly nowMs: () => number;
  private readonly wakes = new Map<string, Wake>();
  private waiting = 0;
  private readonly off: () => void;

  constructor(opts: DeviceWakerOptions) {
    this.opts = opts;
    this.nowMs = opts.nowMs ?? Date.now;
    this.off = opts.presence.onChange((deviceId, online) => {
      if (online) this.woke(deviceId);
    });
  }

  /** Sessions waiting for their device to wake, on this node. */
  get size(): number {
    return this.waiting;
  }

  /**
   * Resolves once `deviceId` is online (at once if it is), or rejects with DEVICE_OFFLINE after
   * the timeout or past a bound.
   */
  wake(deviceId: string): Promise<WakeResult> {
    const now = this.nowMs();
    if (this.opts.presence.isDeviceOnline(deviceId) !== false) return Promise.resolve({ requestedAt: now, wokeAt: now });
    let w = this.wakes.get(deviceId);
    if ((w?.waiters.size ?? 0) >= (this.opts.maxPerDevice ?? 16) || this.waiting >= (this.opts.maxPerNode ?? 1000)) {
      wakesTotal.inc({ outcome: 'refused' });
      return Promise.reject(deviceOffline(deviceId));
    }
    const first = w === undefined;
    if (!w) this.wakes.set(deviceId, w = { requestedAt: now, waiters: new Set() });
    const wake = w;
    const p = new Promise<WakeResult>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.leave(deviceId, wake, waiter);
          wakesTotal.inc({ outcome: 'timeout' });
          reject(deviceOffline(deviceId));
        }, this.opts.timeoutMs),
      };
      wake.waiters.add(waiter);
      this.waiting++;
    });
    if (first) this.fire(deviceId, wake.requestedAt);
    return p;
  }

  private leave(deviceId: string, wake: Wake, waiter: Waiter): void {
    clearTimeout(waiter.timer);
    if (!wake.waiters.delete(waiter)) return;
    this.waiting--;
    if (wake.waiters.size === 0 && this.wakes.get(deviceId) === wake) {
      this.wakes.delete(deviceId);
      this.clearRetained(deviceId);
    }
  }

  private woke(deviceId: string): void {
    const wake = this.wakes.get(deviceId);
    if (!wake) return;
    const wokeAt = this.nowMs();
    for (const waiter of [...wake.waiters]) {
      this.leave(deviceId, wake, waiter);
      wakesTotal.inc({ outcome: 'woke' });
      waiter.resolve({ requestedAt: wake.requestedAt, wokeAt });
    }
  }

  /** The wake hooks, once per wake; a failure is logged and counted, never retried. */
  private fire(deviceId: string, requestedAt: number): void {
    const wake = { deviceId, requestedAt, timeoutSec: this.opts.timeoutMs / 1000 };
    // A signaling envelope (docs/signaling.md "Messages") from the service; clients ignore types they do not know.
    const envelope = JSON.stringify({ type: 'wake', sessionId: '', from: SERVER_ID, to: deviceId, msgId: randomUUID(), payload: wake, timestamp: requestedAt });
    this.opts.publish(deviceTopic(deviceId), envelope, { qos: 1, retain: true }).catch((err: unknown) => {
      wakeHookFailuresTotal.inc({ hook: 'mqtt' });
      this.opts.log.warn({ err, deviceId }, 'wake: could not publish the wake message');
    });
    const url = this.opts.webhook;
    if (url === undefined) return;
    const timeoutMs = Math.min(this.opts.webhookTimeoutMs ?? 5000, this.opts.timeoutMs);
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'wake', ...wake }), signal: AbortSignal.timeout(timeoutMs) })
      .then(async (res) => {
        await res.body?.cancel();
        if (!res.ok) throw new Error(`the webhook answered ${res.status}`);
        this.opts.log.debug({ deviceId }, 'wake: webhook called');
      })
      .catch((err: unknown) => {
        wakeHookFailuresTotal.inc({ hook: 'webhook' });
        this.opts.log.warn({ err, deviceId }, 'wake: the webhook failed (not retried)');
      });
  }

  private clearRetained(deviceId: string): void {
    // An empty retained message removes the retained wake (MQTT 3.1.1 §3.3.1.3).
    this.opts.publish(deviceTopic(deviceId), '', { qos: 1, retain: true }).catch((err: unknown) => {
      wakeHookFailuresTotal.inc({ hook: 'mqtt' });
      this.opts.log.warn({ err, deviceId }, 'wake: could not clear the wake message');
    });
  }

  /** Lets every waiter fail with DEVICE_OFFLINE now and stops listening. */
  stop(): void {
    this.off();
    for (const [deviceId, wake] of [...this.wakes]) {
      for (const waiter of [...wake.waiters]) {
        this.leave(deviceId, wake, waiter);
        waiter.reject(deviceOffline(deviceId));
      }
    }
  }
}
