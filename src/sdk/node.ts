/**
 * The SDK in Node: connect() and serve() on werift, with NAT detection over raw UDP
 * (natDetectNode.ts). `import { connect, serve } from './sdk/node.ts'`.
 */
import { connect as connectWith, type AppConnection, type ConnectOptions } from './app.ts';
import { serve as serveWith, type DeviceServer, type ServeOptions } from './device.ts';
import { nodeNatDetector } from './natDetectNode.ts';
import { weriftPlatform } from './weriftRtc.ts';

export * from './index.ts';
export { weriftPlatform, nodeNatDetector };

/**
 * Starts werift's one-time work (its certificate, one DTLS handshake in memory) so the process's
 * first connect() does not wait for it: call it when the app starts (docs/client.md "Setup time").
 */
export function warmUp(): Promise<void> {
  return weriftPlatform.warmUp?.() ?? Promise.resolve();
}

/** connect() with werift and the UDP NAT detector unless others are given. */
export function connect(opts: Omit<ConnectOptions, 'platform'> & { platform?: ConnectOptions['platform'] }): Promise<AppConnection> {
  return connectWith({ ...opts, platform: opts.platform ?? weriftPlatform, natDetector: opts.natDetector ?? nodeNatDetector });
}

/** serve() with werift and the UDP NAT detector unless others are given. */
export function serve(opts: Omit<ServeOptions, 'platform'> & { platform?: ServeOptions['platform'] }): Promise<DeviceServer> {
  return serveWith({ ...opts, platform: opts.platform ?? weriftPlatform, natDetector: opts.natDetector ?? nodeNatDetector });
}
