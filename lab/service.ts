/**
 * The lab's processes: p2pd on the server site (every role, HTTP on port 80 and TURN over TLS on
 * 443 so a UDP-blocking firewall that lets out only web ports still reaches it), a camera
 * (`p2pd device`) in the camera site, and what waits for them. Nothing listens on this machine's
 * own namespace: all of it is in the lab's namespaces.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHs256Signer } from '../src/auth/token.ts';
import { SERVER_ALT_IP, SERVER_IP, type Namespace } from './sites.ts';

export const P2PD = fileURLToPath(new URL('../bin/p2pd.js', import.meta.url));
export const RUN_TS = fileURLToPath(new URL('../bin/run.js', import.meta.url));
export const SERVER_URL = `http://${SERVER_IP}`;
const JWT_SECRET = 'p2pd-lab-jwt-secret-not-for-production';

export const signer = createHs256Signer(JWT_SECRET);

/** Collects a child's output lines; `waitLine` resolves at the first line matching. */
export class Output {
  readonly lines: string[] = [];
  private readonly waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];

  constructor(child: ChildProcess) {
    let buf = '';
    // docs/lab.md "Running it": LAB_TRACE_DIR keeps every line, time-stamped.
    const traceFile = process.env.LAB_TRACE_DIR ? join(process.env.LAB_TRACE_DIR, `${child.pid}.log`) : undefined;
    const feed = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.lines.push(line);
        if (traceFile) appendFileSync(traceFile, `${new Date().toISOString()} ${line}\n`);
        if (this.lines.length > 2000) this.lines.shift();
        for (const w of [...this.waiters]) if (w.test(line)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(line); }
      }
    };
    child.stdout?.on('data', feed);
    child.stderr?.on('data', feed);
  }

  waitLine(test: (l: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last output:\n${this.lines.slice(-20).join('\n')}`)), timeoutMs);
      this.waiters.push({ test, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }
}

export interface Service {
  readonly child: ChildProcess;
  /** The TLS certificate clients are told to trust (PEM file), and its public key's SHA-256 (base64). */
  readonly tls: { readonly caFile: string; readonly spki: string };
  readonly output: Output;
  /** GET a path of the HTTP API from inside the server site. */
  get(path: string): string;
  stop(): void;
}

/** Starts p2pd on the server site and waits until /readyz answers 200. */
export async function startService(server: Namespace, opts: { roles?: string; extraArgs?: readonly string[] } = {}): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-lab-'));
  // TURN over TLS on 443 is what a UDP-blocking firewall lets through. Clients trust this one
  // certificate (docs/turn.md "Clients behind firewalls that block UDP"): Node through
  // NODE_EXTRA_CA_CERTS, Chromium through the hash of its public key.
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${SERVER_IP}`, '-addext', `subjectAltName=IP:${SERVER_IP}`, '-keyout', join(dir, 'key.pem'), '-out', cert], { stdio: 'ignore' });
  const spki = execFileSync('sh', ['-c', `openssl x509 -in ${cert} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`], { encoding: 'utf8' }).trim();
  const child = server.spawn([process.execPath, P2PD, 'serve', '--roles', opts.roles ?? 'stun,turn,signal,api',
    '--listen', SERVER_IP, '--alt-ip', SERVER_ALT_IP, '--external-ip', SERVER_IP,
    '--http', `${SERVER_IP}:80`, '--tls-port', '443', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'),
    '--jwt-secret', JWT_SECRET, '--auth-secret', 'p2pd-lab-turn-secret', '--workers', '1', '--log-level', 'warn',
    ...opts.extraArgs ?? []]);
  const output = new Output(child);
  const get = (path: string): string => server.exec([process.execPath, '-e',
    `fetch(${JSON.stringify(SERVER_URL + path)}).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, () => process.exit(1))`]);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      get('/readyz');
      break;
    } catch {
      if (child.exitCode !== null) throw new Error(`p2pd serve exited with ${child.exitCode}:\n${output.lines.slice(-20).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`p2pd serve not ready within 60 s:\n${output.lines.slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    child, output, get, tls: { caFile: cert, spki },
    stop: () => { child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); },
  };
}

export interface Camera {
  readonly id: string;
  readonly output: Output;
  /** The NAT type the camera found itself (its `nat` event), once it has. */
  natType(): string | undefined;
  stop(): void;
}

/** Starts `p2pd device` in the camera site and waits until it is online. */
export async function startCamera(host: Namespace, id: string, caFile: string): Promise<Camera> {
  const token = await signer.sign({ sub: id, role: 'device', ttlSec: 24 * 3600 });
  const child = host.spawn([process.execPath, P2PD, 'device', '--id', id, '--server', SERVER_URL, '--token', token,
    '--json', '--size', '320x180', '--fps', '15', '--bitrate-kbps', '300'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile } });
  const output = new Output(child);
  await output.waitLine((l) => l.includes('"event":"online"'), 60_000, `camera ${id} online`);
  // Its NAT type decides how it punches (src/sdk/holePunch.ts): the first attempt waits for it
  // (detection is bounded at 3 s; past that the camera goes on without, and so does the lab).
  const natLine = (): string | undefined => output.lines.find((l) => l.includes('"event":"nat"'));
  await output.waitLine((l) => l.includes('"event":"nat"'), 8000, `camera ${id} NAT type`).catch(() => undefined);
  return {
    id, output,
    natType: () => { const l = natLine(); return l === undefined ? undefined : (JSON.parse(l) as { natType: string }).natType; },
    stop: () => { child.kill('SIGTERM'); },
  };
}

export function appToken(sub: string): Promise<string> {
  return signer.sign({ sub, role: 'app', devices: ['*'], ttlSec: 24 * 3600 });
}
