/**
 * The SDK's calls to the HTTP API (docs/reference.md "HTTP API") with fetch, in the browser and in Node.
 * Every failure becomes an SdkError: unreachable → SIGNALING_UNAVAILABLE, slow → TIMEOUT, an
 * `{"error": {"code"}}` answer → that code (errors.ts fromRemote).
 */
import { SdkError, badOptions, fromRemote, signalingUnavailable, timeout } from './errors.ts';

export interface IceServerInit {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** One signaling node: its MQTT URLs (docs/signaling.md "Finding a node"). */
export interface SignalingServerInit {
  readonly urls: readonly string[];
}

/** The fields of the session object the SDK uses. */
export interface SessionInfo {
  readonly sessionId: string;
  readonly deviceId: string;
  readonly appId: string;
  readonly status: string;
  readonly iceServers: readonly IceServerInit[];
  /** Signaling nodes nearest first (absent from older services). */
  readonly signaling?: readonly SignalingServerInit[];
}

/** `http://host:8080/` → `http://host:8080`; refuses anything that is not an http(s) URL. */
export function normalizeServer(server: string): string {
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    throw badOptions(`server ${JSON.stringify(server)} is not a URL (e.g. http://localhost:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badOptions(`server ${JSON.stringify(server)} must be an http(s) URL`);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** MQTT over WebSocket of a server: `{server}/mqtt` with ws(s). */
export function mqttUrlFor(server: string): string {
  return `${server.replace(/^http/, 'ws')}/mqtt`;
}

export interface RequestOptions {
  readonly token?: string;
  readonly body?: unknown;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export async function requestJson<T>(method: string, url: string, opts: RequestOptions): Promise<T> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeoutMs);
  const onAbort = (): void => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let res: Response;
  try {
    const headers: Record<string, string> = {};
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: ctl.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw new SdkError('CLOSED', `${method} ${url} was cancelled`);
    if (ctl.signal.aborted) throw timeout(`${method} ${new URL(url).pathname}`, opts.timeoutMs);
    throw signalingUnavailable(`cannot reach ${new URL(url).origin}: ${(err as Error).message}`, err);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (e && typeof e.code === 'string') throw fromRemote(e.code, typeof e.message === 'string' ? e.message : `HTTP ${res.status}`, 'service');
    if (res.status >= 500) throw signalingUnavailable(`${method} ${new URL(url).pathname} answered HTTP ${res.status}`);
    throw new SdkError('SESSION_FAILED', `${method} ${new URL(url).pathname} answered HTTP ${res.status}`, { serverCode: `HTTP_${res.status}` });
  }
  return body as T;
}

/**
 * Opens a kept-alive connection to the API before the first request needs it (`GET /healthz`,
 * its answer read and dropped): the first `POST /v1/sessions` then costs its round trip only,
 * not a connect as well (docs/client.md "Setup time"). Resolves either way; fetch keeps an idle
 * connection a few seconds.
 */
export async function preconnect(server: string, timeoutMs = 5000): Promise<void> {
  try {
    await requestJson('GET', `${normalizeServer(server)}/healthz`, { timeoutMs });
  } catch { /* the first request connects then */ }
}

/** `POST /v1/dev/token`: a development token from a server running with a generated key. */
export async function devToken(server: string, req: { role: 'app' | 'device'; sub?: string; devices?: readonly string[] }, timeoutMs = 5000): Promise<string> {
  const r = await requestJson<{ token: string }>('POST', `${normalizeServer(server)}/v1/dev/token`, { body: req, timeoutMs });
  return r.token;
}

/** `GET /v1/signaling`: the signaling nodes for this caller, nearest first (a device has no session to read them from). */
export async function signalingServers(server: string, token: string, timeoutMs = 5000): Promise<readonly SignalingServerInit[]> {
  const r = await requestJson<{ signaling?: readonly SignalingServerInit[] }>('GET', `${server}/v1/signaling`, { token, timeoutMs });
  return Array.isArray(r?.signaling) ? r.signaling : [];
}
