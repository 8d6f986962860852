/**
 * The viewer page (web/index.html): sign in with an app token (or, in the embedded development
 * default, a development token from POST /v1/dev/token), follow which devices are online (their
 * MQTT presence), watch one, and see its path, setup time, round trip, video latency and bitrate
 * live. Bundled with esbuild by src/api/web.ts.
 *
 * The URL fragment can carry `token`, `device` and `relay=1` or `direct=1` (e.g. a link that opens a device
 * straight away); the fragment never reaches the server. `window.p2pdViewer` exposes the state
 * for tests and the console.
 */
import {
  SignalingClient, connect, isSdkError, readTokenClaims, watchFrames,
  type AppConnection, type ConnectionStats, type IcePolicy, type SdkError,
} from '../../src/sdk/browser.ts';

interface ViewerConfig { readonly devTokens: boolean }

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

const ui = {
  who: $('who'), signOut: $<HTMLButtonElement>('sign-out'), signin: $('signin'), token: $<HTMLTextAreaElement>('token'),
  signIn: $<HTMLButtonElement>('sign-in'), devToken: $<HTMLButtonElement>('dev-token'), devicePanel: $('device-panel'),
  devices: $<HTMLUListElement>('devices'), noDevices: $('no-devices'), relay: $<HTMLInputElement>('relay'), direct: $<HTMLInputElement>('direct'), error: $('error'),
  video: $<HTMLVideoElement>('video'), overlay: $('overlay'), state: $('state'), path: $('path'), disconnect: $<HTMLButtonElement>('disconnect'),
  setup: $('setup'), rtt: $('rtt'), latency: $('latency'), bitrate: $('bitrate'), frames: $('frames'), resolution: $('resolution'),
  details: $('details'),
};

const TOKEN_KEY = 'p2pd.viewer.token';
const server = location.origin;
const mqttUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/mqtt`;

const view = {
  token: undefined as string | undefined,
  appId: undefined as string | undefined,
  signaling: undefined as SignalingClient | undefined,
  online: new Set<string>(),
  deviceId: undefined as string | undefined,
  conn: undefined as AppConnection | undefined,
  state: 'idle' as string,
  stats: undefined as ConnectionStats | undefined,
  latencies: [] as number[],
  error: undefined as { code: string; message: string } | undefined,
  stopFrames: undefined as (() => void) | undefined,
};

declare global {
  interface Window { p2pdViewer: unknown }
}
window.p2pdViewer = {
  get state() { return view.state; },
  get stats() { return view.stats; },
  get error() { return view.error; },
  get online() { return [...view.online]; },
  get path() { return view.conn?.path; },
  /** The path once it is final (what keepalives report): the lab reads this. */
  finalPath: () => view.conn?.finalPath(),
  get setupMs() { return view.conn?.setupMs; },
  /** When each setup step happened, ms since connect (docs/client.md "Setup time"). */
  get setupPhases() { return view.conn?.setup.phases; },
  get natType() { return view.conn?.natType; },
  get latencyMs() { return median(view.latencies); },
  /** The last 90 frames' latencies (device encoder → presented here), ms. */
  get latencies() { return [...view.latencies]; },
  connectTo: (deviceId: string, policy: IcePolicy | boolean = 'all') => connectTo(deviceId, policy === true ? 'relay' : policy === false ? 'all' : policy),
  disconnect: () => disconnect(),
  restartIce: () => view.conn?.restartIce(),
};

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function showError(err: unknown): void {
  const e = err as Partial<SdkError>;
  view.error = { code: typeof e.code === 'string' ? e.code : 'ERROR', message: e.message ?? String(err) };
  ui.error.textContent = `${view.error.message} [${view.error.code}]`;
}

function clearError(): void {
  view.error = undefined;
  ui.error.textContent = '';
}

function setBadge(el: HTMLElement, text: string): void {
  el.textContent = text;
  el.className = `badge ${text}`;
}

const fmt = (n: number | undefined, unit: string, digits = 0): string => (n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(digits)} ${unit}`);

function renderDevices(): void {
  ui.devices.replaceChildren(...[...view.online].sort().map((id) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.dataset.device = id;
    b.className = id === view.deviceId ? 'active' : '';
    const name = document.createElement('span');
    const dot = document.createElement('span');
    dot.className = 'dot';
    name.append(dot, id);
    const action = document.createElement('span');
    action.textContent = id === view.deviceId ? 'watching' : 'watch';
    b.append(name, action);
    b.onclick = () => { void connectTo(id, chosenPolicy()); };
    li.append(b);
    return li;
  }));
  ui.noDevices.hidden = view.online.size > 0;
}

function renderStats(): void {
  const s = view.stats;
  const c = view.conn;
  setBadge(ui.state, view.state);
  setBadge(ui.path, c?.path ?? '–');
  ui.setup.textContent = fmt(c?.setupMs, 'ms');
  ui.rtt.textContent = fmt(s?.rttMs, 'ms', 1);
  ui.latency.textContent = fmt(median(view.latencies), 'ms');
  ui.bitrate.textContent = fmt(s?.bitrateKbps, 'kbit/s');
  ui.frames.textContent = s?.framesDecoded === undefined ? '–' : String(s.framesDecoded);
  ui.resolution.textContent = s?.frameWidth ? `${s.frameWidth}×${s.frameHeight}${s.framesPerSecond ? ` @${Math.round(s.framesPerSecond)}` : ''}` : '–';
  ui.details.textContent = c ? `session ${c.sessionId} · ${s?.localCandidate ?? '?'} ↔ ${s?.remoteCandidate ?? '?'}${c.deviceCodec ? ` · ${c.deviceCodec}` : ''}${s?.iceRestarts ? ` · ICE restarts ${s.iceRestarts}` : ''}` : '';
  ui.disconnect.hidden = !c;
}

async function signIn(token: string): Promise<void> {
  clearError();
  const claims = readTokenClaims(token.trim());
  if (claims.role !== 'app') throw new Error(`this is a ${claims.role} token; the viewer needs an app token`);
  await signOut(false);
  const signaling = await SignalingClient.open({ url: mqttUrl, id: claims.sub, role: 'app', token: token.trim() });
  view.token = token.trim();
  view.appId = claims.sub;
  view.signaling = signaling;
  sessionStorage.setItem(TOKEN_KEY, view.token);
  signaling.on('presence', (id, online) => {
    if (online) view.online.add(id);
    else view.online.delete(id);
    renderDevices();
  });
  signaling.on('error', (e) => showError(e));
  await signaling.subscribePresence(claims.devices.includes('*') ? '*' : claims.devices);
  ui.who.textContent = `signed in as ${claims.sub}`;
  ui.signin.hidden = true;
  ui.signOut.hidden = false;
  ui.devicePanel.hidden = false;
  ui.overlay.textContent = 'Pick a device';
  renderDevices();
}

async function signOut(forget = true): Promise<void> {
  await disconnect();
  await view.signaling?.close();
  view.signaling = undefined;
  view.online.clear();
  if (forget) {
    sessionStorage.removeItem(TOKEN_KEY);
    view.token = undefined;
    ui.signin.hidden = false;
    ui.signOut.hidden = true;
    ui.devicePanel.hidden = true;
    ui.who.textContent = '';
    ui.overlay.textContent = 'Sign in and pick a device';
  }
}

async function disconnect(): Promise<void> {
  const c = view.conn;
  view.conn = undefined;
  view.deviceId = undefined;
  view.stopFrames?.();
  view.stopFrames = undefined;
  if (c) await c.close('viewer');
  ui.video.srcObject = null;
  view.state = 'idle';
  view.stats = undefined;
  view.latencies = [];
  renderStats();
  renderDevices();
}

/** The path switches: relay only, direct only (they exclude each other), or any. */
function chosenPolicy(): IcePolicy {
  return ui.relay.checked ? 'relay' : ui.direct.checked ? 'direct' : 'all';
}

async function connectTo(deviceId: string, iceTransportPolicy: IcePolicy): Promise<void> {
  if (!view.token || !view.signaling) throw new Error('sign in first');
  await disconnect();
  clearError();
  view.deviceId = deviceId;
  view.state = 'connecting';
  ui.overlay.textContent = `Connecting to ${deviceId}…`;
  ui.overlay.hidden = false;
  renderStats();
  renderDevices();
  let conn: AppConnection;
  try {
    conn = await connect({ server, token: view.token, deviceId, signaling: view.signaling, iceTransportPolicy });
  } catch (err) {
    if (view.deviceId === deviceId) {
      view.deviceId = undefined;
      view.state = 'failed';
      ui.overlay.textContent = 'Could not connect';
      showError(err);
      renderStats();
      renderDevices();
    }
    return;
  }
  if (view.deviceId !== deviceId) {
    await conn.close('superseded');
    return;
  }
  view.conn = conn;
  view.state = conn.state;
  const track = conn.tracks.find((t) => t.kind === 'video');
  if (track) ui.video.srcObject = new MediaStream([track.track as MediaStreamTrack]);
  ui.overlay.hidden = true;
  view.stopFrames = watchFrames(ui.video, conn);
  conn.enableFrameTimestamps();
  conn.on('frame', (f) => {
    view.latencies.push(f.latencyMs);
    if (view.latencies.length > 90) view.latencies.shift();
  });
  conn.on('state', (s) => { view.state = s; renderStats(); });
  conn.on('path', () => renderStats());
  conn.on('stats', (s) => { view.stats = s; renderStats(); });
  conn.on('warning', (e) => showError(e));
  conn.on('error', (e) => showError(e));
  conn.on('close', ({ error }) => {
    if (view.conn !== conn) return;
    view.conn = undefined;
    view.deviceId = undefined;
    view.state = error ? 'failed' : 'closed';
    view.stopFrames?.();
    ui.overlay.hidden = false;
    ui.overlay.textContent = error ? `Connection lost: ${error.code}` : 'The device ended the session';
    renderStats();
    renderDevices();
  });
  renderStats();
  renderDevices();
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get('relay') === '1') ui.relay.checked = true;
  else if (params.get('direct') === '1') ui.direct.checked = true;
  ui.relay.onchange = () => { if (ui.relay.checked) ui.direct.checked = false; };
  ui.direct.onchange = () => { if (ui.direct.checked) ui.relay.checked = false; };
  let config: ViewerConfig = { devTokens: false };
  try {
    config = await (await fetch('/viewer-config.json')).json() as ViewerConfig;
  } catch { /* an older server: no development tokens */ }
  ui.devToken.hidden = !config.devTokens;

  ui.signIn.onclick = () => { signIn(ui.token.value).catch(showError); };
  ui.signOut.onclick = () => { void signOut(); };
  ui.disconnect.onclick = () => { void disconnect(); };
  ui.devToken.onclick = async () => {
    try {
      const res = await fetch('/v1/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'app' }) });
      const body = await res.json() as { token?: string; error?: { code: string; message: string } };
      if (!res.ok || !body.token) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.status}`), { code: body.error?.code ?? 'DEV_TOKEN_UNAVAILABLE' });
      ui.token.value = body.token;
      await signIn(body.token);
    } catch (err) {
      showError(err);
    }
  };

  const token = params.get('token') ?? sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    ui.token.value = token;
    try {
      await signIn(token);
    } catch (err) {
      showError(err);
      if (isSdkError(err, 'AUTH_FAILED')) sessionStorage.removeItem(TOKEN_KEY);
      return;
    }
    const device = params.get('device');
    if (device) await connectTo(device, chosenPolicy());
  }
}

// A closing tab says bye, so the device stops streaming to it at once.
addEventListener('pagehide', () => { void view.conn?.close('page closed'); });

main().catch(showError);
