/**
 * Stable codes of the STUN/TURN stream listeners: why the server closed a TCP or TLS connection
 * (docs/turn.md "Connection limits"). Nothing is answered on a closed connection, so the code
 * shows in `stun_stream_closed_total{reason}` as its label (the code in lower case, without the
 * `STREAM_` prefix) and in logs.
 */
export type StreamCloseCode =
  /** More than the bound queued for writing (the socket's backlog plus unparsed input). */
  | 'STREAM_WRITE_BACKLOG'
  /** Reading paused because the client did not take our answers, and it still did not take them. */
  | 'STREAM_WRITE_STALLED'
  /** No complete message received within --tcp-idle-timeout, and no allocation on the connection. */
  | 'STREAM_IDLE'
  /** The source IP holds --tcp-max-per-source connections already. */
  | 'STREAM_PER_SOURCE'
  /** Bytes that are neither STUN nor ChannelData: a stream cannot be resynchronised. */
  | 'STREAM_MALFORMED'
  /** A frame announcing more bytes than a connection may buffer. */
  | 'STREAM_FRAME_TOO_LARGE'
  /** The TLS handshake did not finish within --tls-handshake-timeout. */
  | 'TLS_HANDSHAKE_TIMEOUT'
  /** The TLS handshake failed (bad ClientHello, no common cipher, reset). */
  | 'TLS_HANDSHAKE_FAILED';

/** The metric label of a code: `STREAM_WRITE_STALLED` → `write_stalled`, `TLS_HANDSHAKE_TIMEOUT` → `tls_handshake_timeout`. */
export function streamCloseLabel(code: StreamCloseCode): string {
  return code.replace(/^STREAM_/, '').toLowerCase();
}
