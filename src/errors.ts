/**
 * The catalogue of p2pd's stable error codes: every code once, where it shows, the status it is
 * answered with, and below the table one constructor per code (as fastify keeps its codes in
 * `lib/errors.js`). The same code appears in HTTP answers `{"error": {"code", "message"}}`, MQTT
 * `error` messages, STUN reason phrases, metric labels and logs. Each code is listed in the doc
 * table of each place it shows (`src/errors.test.ts` holds the docs to this table). Never throw
 * strings.
 *
 * Browser-safe: the SDK bundle imports this file, so it imports nothing.
 */

/** Where a code shows; each has one table in docs/ (see `src/errors.test.ts`). */
export type Surface =
  /** An HTTP answer of the API (docs/client.md "Errors of the HTTP API"). */
  | 'http'
  /** An MQTT `error` message from the signaling service (docs/signaling.md "Errors"). */
  | 'mqtt'
  /** A TURN error response, by its STUN error code (docs/turn.md "Error codes"). */
  | 'turn'
  /** The STUN codec (docs/turn.md "Malformed messages"). */
  | 'stun'
  /** Why a STUN/TURN TCP or TLS connection was closed (docs/turn.md "Connection limits"). */
  | 'stream'
  /** A command that stops: `p2pd: <message> [CODE]`, exit status 2 (docs/deploy.md "Command errors"). */
  | 'cli'
  /** `SdkError.code` of the client SDK (docs/client.md "Error codes"). */
  | 'sdk'
  /** An `error` message a device (`p2pd device`, the SDK's device side) sends (docs/client.md). */
  | 'device';

interface Entry {
  readonly on: readonly Surface[];
  /** HTTP status of the answer (codes that reach an HTTP client). */
  readonly http?: number;
  /** STUN error code of the answer (RFC 8489 §14.8, RFC 8656 §18.9). */
  readonly stun?: number;
}

export const ERROR_CODES = {
  // The HTTP API and MQTT signaling.
  /** A malformed request: unreadable JSON, a field missing or of the wrong type. */
  BAD_REQUEST: { on: ['http'], http: 400 },
  /** No such route, or no such object behind it. */
  NOT_FOUND: { on: ['http'], http: 404 },
  /** No `Authorization: Bearer <token>`. */
  TOKEN_MISSING: { on: ['http'], http: 401 },
  /** A token that is not ours, malformed, or with bad claims. */
  TOKEN_INVALID: { on: ['http', 'mqtt'], http: 401 },
  /** A token past its `exp`. */
  TOKEN_EXPIRED: { on: ['http', 'mqtt'], http: 401 },
  /** The token does not allow this: another device, the wrong role, a topic not its own. */
  FORBIDDEN: { on: ['http', 'mqtt', 'sdk'], http: 403 },
  /** `POST /v1/dev/token` from a caller that is not on this machine. */
  DEV_TOKENS_LOOPBACK_ONLY: { on: ['http'], http: 403 },
  /** `POST /v1/mqtt/auth` without the broker hook secret (or from afar when there is none). */
  HOOK_FORBIDDEN: { on: ['http'], http: 403 },
  /** Over a request or failed-login budget (the answer carries `retry-after`). */
  RATE_LIMITED: { on: ['http'], http: 429 },
  /** An unknown or expired session id. */
  SESSION_NOT_FOUND: { on: ['http', 'mqtt'], http: 404 },
  /** A session id that is taken. */
  SESSION_EXISTS: { on: ['http'], http: 409 },
  /** Signaling in a closed session; a TURN allocation with REST credentials of a closed session. */
  SESSION_CLOSED: { on: ['mqtt', 'turn'], http: 409, stun: 401 },
  /** A peer message without the session both ends belong to. */
  SESSION_REQUIRED: { on: ['mqtt'], http: 400 },
  /** The device's presence is offline (for the SDK: the device is not connected to the service). */
  DEVICE_OFFLINE: { on: ['http', 'mqtt', 'sdk'], http: 409 },
  /**
   * The device serves as many viewers as it takes: the service's --max-viewers open sessions
   * (HTTP, MQTT), or the device's own --max-viewers (its `error` message).
   */
  DEVICE_BUSY: { on: ['http', 'mqtt', 'device'], http: 409 },
  /** The app holds --max-sessions-per-app open sessions. */
  TOO_MANY_SESSIONS: { on: ['http', 'mqtt'], http: 429 },
  /** No TURN node can take a session: none healthy, all draining or at capacity. */
  NO_TURN_NODE: { on: ['http', 'mqtt'], http: 503 },
  /** The session store (Redis) did not answer. */
  STORE_UNAVAILABLE: { on: ['http', 'mqtt'], http: 503 },
  /** `GET /readyz` of a node that cannot serve yet (or any more). */
  NOT_READY: { on: ['http'], http: 503 },
  /** The web viewer could not be built or served. */
  WEB_UNAVAILABLE: { on: ['http'], http: 503 },
  /** A failure of the service itself. */
  INTERNAL: { on: ['http', 'mqtt'], http: 500 },
  /** A signaling payload that is not JSON. */
  BAD_JSON: { on: ['mqtt'], http: 400 },
  /** A signaling `type` that is not one of the seven. */
  UNKNOWN_TYPE: { on: ['mqtt'], http: 400 },
  /** A signaling message with a field missing or wrong, or on the wrong topic. */
  BAD_MESSAGE: { on: ['mqtt'], http: 400 },
  /** A signaling message over 64 KiB. */
  MESSAGE_TOO_LARGE: { on: ['mqtt'], http: 413 },
  /** A signaling `from` that is not the sender. */
  FORGED_FROM: { on: ['mqtt'], http: 403 },
  /**
   * The node drains: its clients are told to move to the nodes `payload.signaling` lists, and
   * its broker refuses new logins (docs/signaling.md "Draining").
   */
  NODE_DRAINING: { on: ['mqtt'], http: 503 },

  // The TURN relay: each answered with its STUN error code and the RFC's reason phrase.
  /** 400: a required attribute is missing or malformed, or attributes contradict each other. */
  TURN_BAD_REQUEST: { on: ['turn'], stun: 400 },
  /** 401: no credentials, unknown user, expired REST username or wrong MESSAGE-INTEGRITY. */
  UNAUTHENTICATED: { on: ['turn'], stun: 401 },
  /** 403: the peer is in a denied range (docs/turn.md "Safe by default: which peers"). */
  PEER_FORBIDDEN: { on: ['turn'], stun: 403 },
  /** 420: a comprehension-required attribute the relay does not understand. */
  UNKNOWN_ATTRIBUTE: { on: ['turn'], stun: 420 },
  /** 437: no allocation on this 5-tuple, or another transaction created the one there. */
  ALLOCATION_MISMATCH: { on: ['turn'], stun: 437 },
  /** 438: the NONCE expired or was never ours. */
  STALE_NONCE: { on: ['turn'], stun: 438 },
  /**
   * 300: the node drains; ALTERNATE-SERVER names another TURN node (RFC 8489 §10; sent only
   * after authentication, with MESSAGE-INTEGRITY).
   */
  TRY_ALTERNATE: { on: ['turn'], stun: 300 },
  /** 440: the relay has no address of the requested family. */
  ADDRESS_FAMILY_NOT_SUPPORTED: { on: ['turn'], stun: 440 },
  /** 441: USERNAME differs from the one that created the allocation. */
  WRONG_CREDENTIALS: { on: ['turn'], stun: 441 },
  /** 442: REQUESTED-TRANSPORT other than UDP. */
  UNSUPPORTED_TRANSPORT: { on: ['turn'], stun: 442 },
  /** 443: the peer's family has no relayed address in this allocation. */
  PEER_ADDRESS_FAMILY_MISMATCH: { on: ['turn'], stun: 443 },
  /** 486: the user (or session) has --user-quota allocations already, or the principal --principal-quota. */
  ALLOCATION_QUOTA_REACHED: { on: ['turn'], stun: 486 },
  /**
   * 508: --max-allocations reached, no relay port free, a reservation token we do not hold, or
   * the allocation holds --max-permissions permissions / --max-channels channels (RFC 8656 §9.3, §11.2).
   */
  INSUFFICIENT_CAPACITY: { on: ['turn'], stun: 508 },

  // The STUN codec (src/stun/errors.ts). Decoding (StunDecodeError): a message that does not
  // decode is dropped, an attribute that does not read is answered 400 `Bad Request: CODE`.
  // Encoding (StunEncodeError) fails only on a bug of the caller.
  /** Decoding: fewer than 20 bytes. */
  STUN_TOO_SHORT: { on: ['stun'], stun: 400 },
  /** Decoding: the two top bits of the first byte are not 0 (or, when framing TCP, not 00 or 01). */
  STUN_NOT_STUN: { on: ['stun'], stun: 400 },
  /** Decoding: not the magic cookie. */
  STUN_BAD_COOKIE: { on: ['stun'], stun: 400 },
  /** Decoding: length field not a multiple of 4, or not matching the bytes given. */
  STUN_BAD_LENGTH: { on: ['stun'], stun: 400 },
  /** Decoding: an attribute overruns the message, there are too many, or its value is malformed. */
  STUN_BAD_ATTRIBUTE: { on: ['stun'], stun: 400 },
  /** Decoding: an address family other than 0x01 (IPv4) or 0x02 (IPv6). */
  STUN_BAD_ADDRESS_FAMILY: { on: ['stun'], stun: 400 },
  /** Decoding: a text value over its RFC limit. Encoding: a value over 65535 bytes or its RFC limit. */
  STUN_VALUE_TOO_LONG: { on: ['stun'], stun: 400 },
  /** Decoding: a text value that is not valid UTF-8. */
  STUN_BAD_UTF8: { on: ['stun'], stun: 400 },
  /** Decoding: MESSAGE-INTEGRITY(-SHA256) of the wrong length. */
  STUN_BAD_INTEGRITY: { on: ['stun'], stun: 400 },
  /** Decoding: FINGERPRINT of the wrong length or not last. */
  STUN_BAD_FINGERPRINT: { on: ['stun'], stun: 400 },
  /** Encoding: the message would exceed the 16-bit length field. */
  STUN_MESSAGE_TOO_LONG: { on: ['stun'] },
  /** Encoding: an IP address string that does not match its family, or a bad port. */
  STUN_BAD_ADDRESS: { on: ['stun'] },
  /** Encoding: any other value outside its range (type, error code, transaction id length …). */
  STUN_BAD_VALUE: { on: ['stun'] },

  // Why a STUN/TURN stream was closed: `stun_stream_closed_total{reason}` carries the code in
  // lower case without the `STREAM_` prefix (streamCloseLabel); nothing is answered.
  /** More than the bound queued for writing (the socket's backlog plus unparsed input). */
  STREAM_WRITE_BACKLOG: { on: ['stream'] },
  /** Reading paused because the client did not take our answers, and it still did not take them. */
  STREAM_WRITE_STALLED: { on: ['stream'] },
  /** No complete message received within --tcp-idle-timeout, and no allocation on the connection. */
  STREAM_IDLE: { on: ['stream'] },
  /** The source IP holds --tcp-max-per-source connections already. */
  STREAM_PER_SOURCE: { on: ['stream'] },
  /** Bytes that are neither STUN nor ChannelData: a stream cannot be resynchronised. */
  STREAM_MALFORMED: { on: ['stream'] },
  /** A frame announcing more bytes than a connection may buffer. */
  STREAM_FRAME_TOO_LARGE: { on: ['stream'] },
  /** The TLS handshake did not finish within --tls-handshake-timeout. */
  TLS_HANDSHAKE_TIMEOUT: { on: ['stream'] },
  /** The TLS handshake failed (bad ClientHello, no common cipher, reset). */
  TLS_HANDSHAKE_FAILED: { on: ['stream'] },

  // Commands that stop.
  /** An option no command knows. */
  CONFIG_UNKNOWN_OPTION: { on: ['cli'] },
  /** An option or `P2PD_*` value that does not parse, or a file it names that does not load. */
  CONFIG_INVALID_VALUE: { on: ['cli'] },
  /** An option without its value. */
  CONFIG_MISSING_VALUE: { on: ['cli'] },
  /** Options that do not go together. */
  CONFIG_CONFLICT: { on: ['cli'] },
  /** `--config FILE` that cannot be read, is not YAML, or is not a mapping of option names to values. */
  CONFIG_FILE_INVALID: { on: ['cli'] },
  /** A STUN/TURN port another process holds. */
  PORT_IN_USE: { on: ['cli'] },
  /** `p2pd nat-type`: the server gives no OTHER-ADDRESS (RFC 5780). */
  NAT_NO_RFC5780: { on: ['cli'] },
  /** `p2pd nat-type`: the server's alternate address did not answer. */
  NAT_BAD_SERVER: { on: ['cli'] },

  // The client SDK (SdkError, src/sdk/errors.ts) and what its device side sends.
  /** ICE found no working path (direct or relayed), or lost it and could not restore it. */
  ICE_FAILED: { on: ['sdk'] },
  /** A step did not finish in time (the message names the step). */
  TIMEOUT: { on: ['sdk'] },
  /** The signaling broker or the HTTP API cannot be reached. */
  SIGNALING_UNAVAILABLE: { on: ['sdk'] },
  /** The token is missing, malformed, expired or refused by the service. */
  AUTH_FAILED: { on: ['sdk'] },
  /** The service refused or failed the session (see `serverCode`). */
  SESSION_FAILED: { on: ['sdk'] },
  /** The device answered with an error (see `serverCode`), e.g. it is full or has no media. */
  DEVICE_ERROR: { on: ['sdk'] },
  /** The device ended the session (bye), or restarted and no longer knows it. */
  PEER_GONE: { on: ['sdk'] },
  /** The connection was closed by this side. */
  CLOSED: { on: ['sdk'] },
  /** The options given to connect()/serve() are unusable. */
  BAD_OPTIONS: { on: ['sdk'] },
  /** The device's media source could not start (e.g. ffmpeg missing). */
  MEDIA_UNAVAILABLE: { on: ['sdk'] },
  /** Device: an ICE-restart offer for a session it does not have (it restarted). */
  SESSION_UNKNOWN: { on: ['device'] },
  /** Device: the offer could not be answered. */
  NEGOTIATION_FAILED: { on: ['device'] },
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes that show on `surface`. */
export type CodeOn<S extends Surface> = {
  [C in ErrorCode]: S extends (typeof ERROR_CODES)[C]['on'][number] ? C : never;
}[ErrorCode];

/** Whether `code` shows on `surface`. */
export function isOn<S extends Surface>(code: ErrorCode, surface: S): code is CodeOn<S> {
  const entry: Entry = ERROR_CODES[code];
  return entry.on.includes(surface);
}

/** The codes that show on `surface`, in catalogue order. */
export function codesOn<S extends Surface>(surface: S): CodeOn<S>[] {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c): c is CodeOn<S> => isOn(c, surface));
}

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CODES, code);

/** The one error class of p2pd (the STUN codec and the SDK name their own kinds of it). */
export class P2pdError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  /** HTTP status when the error reaches an HTTP client: the catalogue's, else 500 (it should not). */
  readonly statusCode: number;

  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    const entry: Entry = ERROR_CODES[code];
    this.statusCode = entry.http ?? 500;
  }

  /** The STUN error code a TURN or STUN server answers this error with, if it has one. */
  get stunCode(): number | undefined {
    const entry: Entry = ERROR_CODES[this.code];
    return entry.stun;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

const make = <C extends ErrorCode>(code: C, message: string, options?: ErrorOptions): P2pdError<C> => new P2pdError(code, message, options);
const quote = (s: string): string => JSON.stringify(s);

// HTTP API
export const badRequest = (message: string) => make('BAD_REQUEST', message);
export const notFound = (what: string) => make('NOT_FOUND', `${what} not found`);
export const tokenMissing = () => make('TOKEN_MISSING', 'no token: send Authorization: Bearer <token>');
export const tokenInvalid = (why: string) => make('TOKEN_INVALID', `invalid token: ${why}`);
export const tokenExpired = () => make('TOKEN_EXPIRED', 'token expired');
export const forbidden = (why: string) => make('FORBIDDEN', why);
export const devTokensLoopbackOnly = () => make('DEV_TOKENS_LOOPBACK_ONLY',
  'development tokens are for callers on this machine (loopback) only; the operator can open them with --dev-tokens lan, or give --jwt-secret and mint real tokens');
export const hookForbidden = (why: string) => make('HOOK_FORBIDDEN', why);
/** Over a budget (docs/client.md "Limits of the HTTP API"): per token, per source, or failed logins per source. */
export const rateLimited = (budget: 'token' | 'source' | 'logins', retryAfterSec: number) => make('RATE_LIMITED', budget === 'logins'
  ? `too many failed logins from this source: retry after ${retryAfterSec} s`
  : `too many requests for this ${budget === 'token' ? 'token' : 'source address'}: retry after ${retryAfterSec} s`);
export const notReady = (reason: string) => make('NOT_READY', reason);
export const webUnavailable = (why: string) => make('WEB_UNAVAILABLE', why);
export const internalError = () => make('INTERNAL', 'the service could not handle the message');

// Sessions (HTTP and MQTT alike)
export const sessionNotFound = (sessionId: string) => make('SESSION_NOT_FOUND', `session ${quote(sessionId)} not found`);
export const sessionExists = (sessionId: string) => make('SESSION_EXISTS', `session ${quote(sessionId)} already exists`);
export const sessionClosed = (sessionId: string) => make('SESSION_CLOSED', `session ${quote(sessionId)} is closed`);
export const deviceOffline = (deviceId: string) => make('DEVICE_OFFLINE', `device ${quote(deviceId)} is offline`);
export const tooManySessions = (appId: string, max: number) => make('TOO_MANY_SESSIONS',
  `app ${quote(appId)} has ${max} open sessions, the most --max-sessions-per-app allows: close one first`);
export const deviceBusy = (deviceId: string, max: number) => make('DEVICE_BUSY',
  `device ${quote(deviceId)} has ${max} open sessions, the most --max-viewers allows: try again when a viewer leaves`);
export const noTurnNode = (region: string) => make('NO_TURN_NODE',
  `no TURN node can take a session (region ${quote(region)}): none healthy, all draining or at capacity`);
export const storeUnavailable = (cause?: unknown) => make('STORE_UNAVAILABLE', 'session store unavailable', cause === undefined ? undefined : { cause });

// MQTT signaling
/** An error the signaling service answers with an MQTT `error` message. */
export type SignalingError = P2pdError<CodeOn<'mqtt'>>;
export const badJson = (why: string) => make('BAD_JSON', `message is not JSON: ${why}`);
export const unknownType = (type: string) => make('UNKNOWN_TYPE', `unknown message type ${quote(type.slice(0, 32))}`);
export const badMessage = (why: string) => make('BAD_MESSAGE', why);
export const messageTooLarge = (bytes: number, max: number) => make('MESSAGE_TOO_LARGE', `message of ${bytes} bytes exceeds ${max} bytes`);
export const forgedFrom = (from: string, sender: string) => make('FORGED_FROM', `"from" is ${quote(from)} but the sender is ${quote(sender)}`);
/** Only the service sends messages about no session in particular (its own `error` answers). */
export const sessionRequired = (type: string) => make('SESSION_REQUIRED',
  `a peer ${type.slice(0, 32)} needs the "sessionId" of a session both ends belong to`);

// TURN: every refusal names its own case in the message, so the code is the argument.
export type TurnErrorCode = CodeOn<'turn'>;
/** A refusal of a TURN request; the request handler answers it with its `stunCode`. */
export type TurnError = P2pdError<TurnErrorCode> & { readonly stunCode: number };
export const turnError = (code: TurnErrorCode, message: string): TurnError => make(code, message) as TurnError;
export const isTurnError = (err: unknown): err is TurnError => err instanceof P2pdError && isOn(err.code as ErrorCode, 'turn');

// Stream closes
export type StreamCloseCode = CodeOn<'stream'>;
/** The metric label of a code: `STREAM_WRITE_STALLED` → `write_stalled`, `TLS_HANDSHAKE_TIMEOUT` → `tls_handshake_timeout`. */
export function streamCloseLabel(code: StreamCloseCode): string {
  return code.replace(/^STREAM_/, '').toLowerCase();
}

// Commands
export const unknownOption = (name: string) => make('CONFIG_UNKNOWN_OPTION', `unknown option ${name} (see \`p2pd serve --help\`)`);
export const invalidValue = (name: string, value: string, expected: string) =>
  make('CONFIG_INVALID_VALUE', `invalid value for --${name}: ${quote(value)} (expected ${expected})`);
export const missingValue = (name: string) => make('CONFIG_MISSING_VALUE', `option --${name} needs a value`);
export const conflict = (message: string) => make('CONFIG_CONFLICT', message);
/** A key of a --config file (`where`: the file and line) that is no option; `closest` is the option it was probably meant to be. */
export const unknownConfigKey = (where: string, key: string, closest: string | undefined) => make('CONFIG_UNKNOWN_OPTION',
  `unknown key ${quote(key.slice(0, 64))} in ${where}${closest === undefined ? '' : ` (did you mean ${closest}?)`} (keys are the options of \`p2pd serve --help\` without the dashes)`);
export const configFileInvalid = (file: string, why: string) => make('CONFIG_FILE_INVALID', `${file}: ${why}`);
export const portInUse = (address: string, port: number, proto: 'udp' | 'tcp') =>
  make('PORT_IN_USE', `${proto} ${address}:${port} is already in use (is another p2pd or a TURN server running?)`);
export const natNoRfc5780 = (why: string) => make('NAT_NO_RFC5780', why);
export const natBadServer = (why: string) => make('NAT_BAD_SERVER', why);
