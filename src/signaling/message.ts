/**
 * The signaling message of docs/signaling.md: its types, and the validation every message passes
 * before anything acts on it. Pure: no sockets, timers, loggers or metrics.
 *
 *   { "type": "offer", "sessionId": "uuid", "from": "app_1", "to": "device_1", "msgId": "m1",
 *     "payload": { "sdp": "v=0…" }, "timestamp": 1750929836097 }
 *
 * Unknown extra fields are kept and forwarded untouched (newer clients may add some).
 */
import { randomUUID } from 'node:crypto';
import { CLIENT_ID_PATTERN } from '../auth/token.ts';
import { badJson, badMessage, messageTooLarge, unknownType, type SignalingError } from '../errors.ts';
import { SERVER_ID } from './topics.ts';

export const MESSAGE_TYPES = ['offer', 'answer', 'candidate', 'bye', 'keepalive', 'error', 'session'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** The largest message the service accepts (UTF-8 bytes of the MQTT payload). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Above this a payload is refused without parsing it (it is refused anyway). */
const PARSE_LIMIT_BYTES = 4 * MAX_MESSAGE_BYTES;

/** Session ids: UUIDs, or a client's own id of the same shape as the session API accepts. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MSG_ID_MAX = 128;
const ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;

export const PEER_STATES = ['new', 'checking', 'connecting', 'connected', 'disconnected', 'failed', 'closed'] as const;
export type PeerState = (typeof PEER_STATES)[number];
export const PATHS = ['direct', 'relay'] as const;
export type PathKind = (typeof PATHS)[number];

/** `natType`: the sender's NAT type when it knows it (docs/signaling.md "Messages"), counted once per party like a keepalive's. */
export interface SdpPayload { readonly sdp: string; readonly type?: string; readonly natType?: string }
/** The fields of RTCIceCandidateInit; an empty `candidate` marks the end of candidates. */
export interface CandidatePayload {
  readonly candidate: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
  readonly usernameFragment?: string | null;
}
/** A peer's view of its connection: how the service learns outcomes. */
export interface KeepalivePayload {
  readonly state?: PeerState;
  readonly path?: PathKind;
  readonly rttMs?: number;
  readonly setupMs?: number;
  readonly natType?: string;
}
export interface ErrorPayload { readonly code: string; readonly message: string; readonly [k: string]: unknown }
/**
 * A `session` request on p2p/signal/server. `token` is the app's token: needed with an external
 * broker, where the service cannot see who published; the embedded broker knows the sender.
 */
export interface SessionRequestPayload { readonly deviceId: string; readonly token?: string }

interface Base {
  /** '' for a `session` request (the service picks the id) and for an `error` about no session. */
  readonly sessionId: string;
  readonly from: string;
  readonly to: string;
  readonly msgId?: string;
  /** On the service's answers: the msgId of the message answered. */
  readonly replyTo?: string;
  /** Sender's clock, unix milliseconds. */
  readonly timestamp: number;
}

export type SignalMessage =
  | (Base & { readonly type: 'offer' | 'answer'; readonly payload: SdpPayload })
  | (Base & { readonly type: 'candidate'; readonly payload: CandidatePayload })
  | (Base & { readonly type: 'bye'; readonly payload: { readonly reason?: string } })
  | (Base & { readonly type: 'keepalive'; readonly payload: KeepalivePayload })
  | (Base & { readonly type: 'error'; readonly payload: ErrorPayload })
  | (Base & { readonly type: 'session'; readonly payload: SessionRequestPayload | Readonly<Record<string, unknown>> });

/**
 * The service's `error` to one client (docs/signaling.md "Errors"), as JSON: from `server`, a new
 * msgId, `replyTo` the message answered when there is one.
 */
export function serverError(to: string, payload: ErrorPayload, opts: { sessionId?: string; replyTo?: string; nowMs?: number } = {}): string {
  return JSON.stringify({
    type: 'error', sessionId: opts.sessionId ?? '', from: SERVER_ID, to, msgId: randomUUID(),
    ...(opts.replyTo === undefined ? {} : { replyTo: opts.replyTo }),
    payload, timestamp: opts.nowMs ?? Date.now(),
  });
}

/** What could be read from a refused message, to address and label the error answer. */
export interface MessageHints {
  readonly type?: string;
  readonly sessionId?: string;
  readonly from?: string;
  readonly msgId?: string;
}

export type ParseResult =
  | { readonly ok: true; readonly message: SignalMessage }
  | { readonly ok: false; readonly error: SignalingError; readonly hints: MessageHints };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isOptString = (v: unknown, max: number): boolean => v === undefined || (typeof v === 'string' && v.length <= max);
const isOptNonNegative = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0);

function hintsOf(o: Obj): MessageHints {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= 256 ? v : undefined);
  const h: { type?: string; sessionId?: string; from?: string; msgId?: string } = {};
  const type = str(o.type);
  if (type !== undefined) h.type = type;
  const sid = str(o.sessionId);
  if (sid !== undefined && SESSION_ID_PATTERN.test(sid)) h.sessionId = sid;
  const from = str(o.from);
  if (from !== undefined && CLIENT_ID_PATTERN.test(from)) h.from = from;
  const msgId = str(o.msgId);
  if (msgId !== undefined) h.msgId = msgId;
  return h;
}

/**
 * Best effort for text that is not JSON: the `from`, `sessionId` and `msgId` it seems to carry, so
 * that behind an external broker (which does not say who published) the error can still be sent.
 */
function scrapeHints(text: string): MessageHints {
  const field = (name: string): string | undefined => new RegExp(`"${name}"\\s*:\\s*"([^"\\\\]{1,128})"`).exec(text)?.[1];
  return hintsOf({ from: field('from'), sessionId: field('sessionId'), msgId: field('msgId'), type: field('type') });
}

/** Returns why the payload of a message of `type` is not acceptable, or undefined. */
function payloadProblem(type: MessageType, p: Obj): string | undefined {
  switch (type) {
    case 'offer':
    case 'answer':
      if (typeof p.sdp !== 'string' || p.sdp.length === 0) return `payload.sdp must be a non-empty string`;
      if (!isOptString(p.type, 16)) return 'payload.type must be a string';
      if (!isOptString(p.natType, 64)) return 'payload.natType must be a string of at most 64 characters';
      return undefined;
    case 'candidate':
      if (typeof p.candidate !== 'string') return 'payload.candidate must be a string ("" marks the end of candidates)';
      if (p.sdpMid !== undefined && p.sdpMid !== null && typeof p.sdpMid !== 'string') return 'payload.sdpMid must be a string or null';
      if (p.sdpMLineIndex !== undefined && p.sdpMLineIndex !== null && !(Number.isInteger(p.sdpMLineIndex) && (p.sdpMLineIndex as number) >= 0)) {
        return 'payload.sdpMLineIndex must be a non-negative integer or null';
      }
      if (p.usernameFragment !== undefined && p.usernameFragment !== null && typeof p.usernameFragment !== 'string') return 'payload.usernameFragment must be a string or null';
      return undefined;
    case 'bye':
      return isOptString(p.reason, 256) ? undefined : 'payload.reason must be a string';
    case 'keepalive':
      if (p.state !== undefined && !(PEER_STATES as readonly unknown[]).includes(p.state)) return `payload.state must be one of ${PEER_STATES.join(', ')}`;
      if (p.path !== undefined && !(PATHS as readonly unknown[]).includes(p.path)) return 'payload.path must be direct or relay';
      if (!isOptNonNegative(p.rttMs)) return 'payload.rttMs must be a non-negative number';
      if (!isOptNonNegative(p.setupMs)) return 'payload.setupMs must be a non-negative number';
      if (!isOptString(p.natType, 64)) return 'payload.natType must be a string of at most 64 characters';
      return undefined;
    case 'error':
      if (typeof p.code !== 'string' || !ERROR_CODE_PATTERN.test(p.code)) return 'payload.code must be an UPPER_SNAKE code';
      if (typeof p.message !== 'string') return 'payload.message must be a string';
      return undefined;
    case 'session':
      if (typeof p.deviceId !== 'string' || !CLIENT_ID_PATTERN.test(p.deviceId)) return 'payload.deviceId must be a device id';
      if (!isOptString(p.token, 8192)) return 'payload.token must be a string';
      return undefined;
  }
}

/**
 * Validates one MQTT payload. `sessionId` may be omitted only by a `session` request and by an
 * `error`; `payload` only by `bye` and `keepalive`; every other field of §3 is required.
 */
export function parseMessage(raw: Buffer | string): ParseResult {
  const bytes = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (bytes > PARSE_LIMIT_BYTES) {
    // Far too big to be worth parsing: answer from what the head of it seems to say.
    const head = typeof raw === 'string' ? raw.slice(0, 4096) : raw.toString('utf8', 0, 4096);
    return { ok: false, error: messageTooLarge(bytes, MAX_MESSAGE_BYTES), hints: scrapeHints(head) };
  }
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    const hints = scrapeHints(typeof raw === 'string' ? raw : raw.toString('utf8', 0, Math.min(raw.length, 4096)));
    if (bytes > MAX_MESSAGE_BYTES) return { ok: false, error: messageTooLarge(bytes, MAX_MESSAGE_BYTES), hints };
    return { ok: false, error: badJson((err as Error).message), hints };
  }
  if (!isObj(value)) return { ok: false, error: badMessage('a message is a JSON object'), hints: {} };
  const hints = hintsOf(value);
  const fail = (error: SignalingError): ParseResult => ({ ok: false, error, hints });
  // Checked after parsing so the answer can still name the session and the msgId.
  if (bytes > MAX_MESSAGE_BYTES) return fail(messageTooLarge(bytes, MAX_MESSAGE_BYTES));

  const { type, sessionId, from, to, msgId, replyTo, timestamp } = value;
  if (typeof type !== 'string') return fail(badMessage('"type" must be a string'));
  if (!(MESSAGE_TYPES as readonly string[]).includes(type)) return fail(unknownType(type));
  const t = type as MessageType;
  const sessionOptional = t === 'session' || t === 'error';
  if (sessionId === undefined || sessionId === '') {
    if (!sessionOptional) return fail(badMessage('"sessionId" is required'));
  } else if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
    return fail(badMessage('"sessionId" must be a session id'));
  }
  if (typeof from !== 'string' || !CLIENT_ID_PATTERN.test(from)) return fail(badMessage('"from" must be an app or device id'));
  if (typeof to !== 'string' || !CLIENT_ID_PATTERN.test(to)) {
    if (!(t === 'session' && to === undefined)) return fail(badMessage('"to" must be an app or device id'));
  }
  if (msgId !== undefined && (typeof msgId !== 'string' || msgId.length === 0 || msgId.length > MSG_ID_MAX)) {
    return fail(badMessage(`"msgId" must be a string of 1 to ${MSG_ID_MAX} characters`));
  }
  if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTo.length > MSG_ID_MAX)) return fail(badMessage('"replyTo" must be a string'));
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp <= 0) {
    return fail(badMessage('"timestamp" must be the sender\'s clock in unix milliseconds'));
  }
  let payload = value.payload;
  if (payload === undefined && (t === 'bye' || t === 'keepalive')) payload = {};
  if (!isObj(payload)) return fail(badMessage('"payload" must be an object'));
  const problem = payloadProblem(t, payload);
  if (problem !== undefined) return fail(badMessage(problem));

  const message = { ...value, type: t, sessionId: typeof sessionId === 'string' ? sessionId : '', to: typeof to === 'string' ? to : '', payload } as unknown as SignalMessage;
  return { ok: true, message };
}
