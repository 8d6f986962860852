/**
 * Which devices are online, as their retained `online`/`offline` messages (and wills) on
 * p2p/presence/device/{sn} say. Every signaling node keeps the whole map: presence is not
 * shared-subscribed, so each node sees every change.
 */
export class PresenceTracker {
  private readonly online = new Map<string, boolean>();
  private readonly listeners = new Set<(deviceId: string, online: boolean) => void>();
  private isReady: boolean;

  /**
   * `ready`: whether an unknown device may be called offline. With the embedded broker every
   * presence message passes through this process, so it is ready at once; with an external broker
   * it becomes ready once the retained messages have arrived after subscribing.
   */
  constructor(opts: { ready?: boolean } = {}) {
    this.isReady = opts.ready ?? true;
  }

  get ready(): boolean {
    return this.isReady;
  }

  markReady(): void {
    this.isReady = true;
  }

  set(deviceId: string, online: boolean): void {
    const was = this.online.get(deviceId);
    // Offline devices are forgotten: an unknown device is offline once ready; the map stays the
    // size of the online fleet.
    if (online) this.online.set(deviceId, true);
    else this.online.delete(deviceId);
    if (was !== online) for (const l of this.listeners) l(deviceId, online);
  }

  /** true / false when known; undefined while not ready and nothing was heard of this device. */
  isDeviceOnline(deviceId: string): boolean | undefined {
    if (this.online.has(deviceId)) return true;
    return this.isReady ? false : undefined;
  }

  get onlineCount(): number {
    return this.online.size;
  }

  onChange(listener: (deviceId: string, online: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }
}
