/**
 * MQTT over WebSocket on the HTTP server (browsers reach the embedded broker at `{server}/mqtt`).
 * A `ws` server without its own port takes the HTTP upgrades for the path and hands each
 * connection's MQTT byte stream to the broker (`serve`), which guards it per MQTT packet, not
 * per WebSocket message: a packet may span many small messages.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../log.ts';
import { mqttClientsConnected } from '../metrics/metrics.ts';

/** One WebSocket message holds at most one largest packet plus a few more small ones. */
const MIN_WS_MESSAGE_BYTES = 256 * 1024;
/** Longest fixed header: one type byte and four Remaining Length bytes (MQTT 3.1.1 §2.2.3). */
const FIXED_HEADER_MAX_BYTES = 5;

export interface WebSocketOptions {
  readonly path: string;
  readonly log: Logger;
  /** A pre-login slot for a connection from this address, or undefined to refuse it at once. */
  readonly admit: (address: string | undefined, socket: Duplex) => (() => void) | undefined;
  /** Takes the MQTT byte stream of an accepted connection. */
  readonly serve: (stream: Duplex, slot: () => void, req: IncomingMessage) => void;
  readonly maxPacketBytes: number;
}

/** Serves MQTT over WebSocket at `path`; returns a function that stops it. */
export function attachWebSocket(http: HttpServer, opts: WebSocketOptions): () => Promise<void> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: Math.max(MIN_WS_MESSAGE_BYTES, opts.maxPacketBytes + FIXED_HEADER_MAX_BYTES),
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
    // The TCP peer, never a forwarded-for header: a stranger could write any.
    const slot = opts.admit(req.socket.remoteAddress, socket);
    if (slot === undefined) {
      socket.destroy();
      return;
    }
    socket.once('close', slot);
    wss.handleUpgrade(req, socket, head, (ws) => {
      mqttClientsConnected.inc({ transport: 'ws' });
      ws.once('close', () => mqttClientsConnected.dec({ transport: 'ws' }));
      const stream = createWebSocketStream(ws);
      stream.on('error', (err) => opts.log.debug({ err: err.message }, 'MQTT WebSocket error'));
      opts.serve(stream, slot, req);
    });
  };
  http.on('upgrade', onUpgrade);
  return async () => {
    http.off('upgrade', onUpgrade);
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
}
