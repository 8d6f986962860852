/**
 * MQTT over WebSocket on the HTTP server (browsers reach the embedded broker at `{server}/mqtt`).
 * A `ws` server without its own port takes the HTTP upgrades for the path and hands each
 * connection to aedes as a byte stream.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../log.ts';
import { mqttClientsConnected } from '../metrics/metrics.ts';

/** MQTT frames are small here (64 KiB messages); a bigger WebSocket message is refused. */
const MAX_WS_MESSAGE_BYTES = 256 * 1024;

/** Serves MQTT over WebSocket at `path`; returns a function that stops it. */
export function attachWebSocket(http: HttpServer, aedes: Aedes, opts: { path: string; log: Logger }): () => Promise<void> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_WS_MESSAGE_BYTES,
    // MQTT over WebSocket names its subprotocol "mqtt" (MQTT 3.1.1 §6); MQTT 3.1 clients say "mqttv3.1".
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
  });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== opts.path) {
      // Another upgrade handler may own this path; with none, do not leave the socket hanging.
      if (http.listenerCount('upgrade') === 1) socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      mqttClientsConnected.inc({ transport: 'ws' });
      ws.once('close', () => mqttClientsConnected.dec({ transport: 'ws' }));
      const stream = createWebSocketStream(ws);
      stream.on('error', (err) => opts.log.debug({ err: err.message }, 'MQTT WebSocket error'));
      aedes.handle(stream, req);
    });
  };
  http.on('upgrade', onUpgrade);
  return async () => {
    http.off('upgrade', onUpgrade);
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
}
