/**
 * The SDK in Node: connect() and serve() on werift, with NAT detection over raw UDP
 * (natDetectNode.ts). `import { connect, serve } from './sdk/node.ts'`.
 */
import { connect as connectWith, type AppConnection, type ConnectOptions } from './app.ts';
import { serve as serveWith, type DeviceServer, type ServeOptions } from './device.ts';
import { nodeNatDetector } from './natDetectNode.ts';
import { weriftPlatform } from './weriftRtc.ts';
import { preconnect } from './http.ts';

export * from './index.ts';
export { weriftPlatform, nodeNatDetector };

/**
 * Starts werift's one-time work (its certificate, one DTLS handshake in memory) and, given the
 * service's URL, opens a kept-alive HTTP connection to it, so the process's first connect() waits
 * for neither: call it when the app starts (docs/client.md "Setup time").
 */
export async function warmUp(server?: string): Promise<void> {
  await Promise.all([weriftPlatform.warmUp?.(), server === undefined ? undefined : preconnect(server)]);
}

/** connect() with werift and the UDP NAT detector unless others are given. */
export function connect(opts: Omit<ConnectOptions, 'platform'> & { platform?: ConnectOptions['platform'] }): Promise<AppConnection> {
  return connectWith({ ...opts, platform: opts.platform ?? weriftPlatform, natDetector: opts.natDetector ?? nodeNatDetector });
}

/** serve() with werift and the UDP NAT detector unless others are given. */
export function serve(opts: Omit<ServeOptions, 'platform'> & { platform?: ServeOptions['platform'] }): Promise<DeviceServer> {
  return serveWith({ ...opts, platform: opts.platform ?? weriftPlatform, natDetector: opts.natDetector ?? nodeNatDetector });
}
