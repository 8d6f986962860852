/**
 * A real Mosquitto for tests: Debian's `mosquitto` on a free loopback port in a temporary
 * directory, configured from deploy/mosquitto/mosquitto.conf (ports and paths rewritten) and,
 * with `dynsec`, set up by deploy/mosquitto/dynsec-setup.sh — the files operators use. Every
 * broker started here is killed when the test process exits, even on a crash.
 *
 *   const mq = await startMosquitto({ dynsec: true }); // mq.port, mq.serviceUrl, mq.restart(), mq.stop()
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MOSQUITTO = process.env.P2PD_MOSQUITTO ?? (spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] || 'mosquitto');
const DYNSEC_PLUGIN = ['/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so', '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so', '/usr/lib/mosquitto_dynamic_security.so']
  .find((p) => spawnSync('test', ['-f', p]).status === 0);

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export const MOSQUITTO_MISSING = 'mosquitto not found: apt-get install mosquitto mosquitto-clients (or set P2PD_MOSQUITTO)';

/** True when mosquitto, mosquitto_ctrl and the dynamic-security plugin are here. */
export function haveMosquitto(): boolean {
  return spawnSync(MOSQUITTO, ['-h']).error === undefined
    && spawnSync('mosquitto_ctrl', ['--help']).error === undefined
    && DYNSEC_PLUGIN !== undefined;
}

export interface MosquittoOptions {
  /** Dynamic security on (the deployment's setup); off = anonymous access, for plain broker tests. */
  readonly dynsec?: boolean;
}

export interface Mosquitto {
  readonly port: number;
  /** `mqtt://127.0.0.1:port` without credentials. */
  readonly url: string;
  /** The signaling service's login (p2pd's --mqtt-url), with dynsec. */
  readonly serviceUrl: string;
  readonly dir: string;
  output(): string;
  /** Stops (SIGTERM: the persistence file is written) and starts again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const ADMIN = { user: 'admin', password: 'admin-secret' };
const SERVICE = { user: 'p2pd', password: 'p2pd-secret' };

function configFor(port: number, dir: string, dynsec: boolean): string {
  let conf = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8')
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^listener 9001\nprotocol websockets$/m, '')
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`)
    .replace(/^plugin_opt_config_file .*$/m, `plugin_opt_config_file ${dir}/dynamic-security.json`)
    .replace(/^plugin .*$/m, `plugin ${DYNSEC_PLUGIN ?? 'mosquitto_dynamic_security.so'}`)
    .replace(/^log_type notice$/m, 'log_type notice\nlog_type information');
  if (!dynsec) {
    conf = conf.replace(/^plugin.*$/gm, '').replace(/^allow_anonymous false$/m, 'allow_anonymous true');
  }
  // Run as root, mosquitto would switch to the `mosquitto` user and lose the temp directory.
  if (process.getuid?.() === 0) conf += '\nuser root\n';
  return conf;
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dynsec = opts.dynsec ?? true;
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-mosquitto-'));
  const port = await freePort();
  const confFile = join(dir, 'mosquitto.conf');
  writeFileSync(confFile, configFor(port, dir, dynsec));
  if (dynsec) {
    const init = spawnSync('mosquitto_ctrl', ['dynsec', 'init', join(dir, 'dynamic-security.json'), ADMIN.user, ADMIN.password], { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`mosquitto_ctrl dynsec init failed: ${init.stderr}${init.stdout}`);
  }
  let out = '';
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const c = spawn(MOSQUITTO, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    c.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    c.once('exit', () => children.delete(c));
    child = c;
    const until = Date.now() + 10_000;
    while (!(await accepting(port))) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited with ${c.exitCode}:\n${out}`);
      if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port}:\n${out}`);
      await sleep(30);
    }
  };
  const halt = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('exit', () => { clearTimeout(timer); resolve(); });
      c.kill('SIGTERM');
    });
  };

  await launch();
  if (dynsec) {
    const setup = spawnSync('sh', [join(ROOT, 'deploy/mosquitto/dynsec-setup.sh')], {
      encoding: 'utf8',
      env: { ...process.env, MQTT_HOST: '127.0.0.1', MQTT_PORT: String(port), ADMIN_USER: ADMIN.user, ADMIN_PASSWORD: ADMIN.password, P2PD_USER: SERVICE.user, P2PD_PASSWORD: SERVICE.password },
    });
    if (setup.status !== 0) {
      await halt();
      throw new Error(`dynsec-setup.sh failed: ${setup.stderr}${setup.stdout}`);
    }
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    serviceUrl: dynsec ? `mqtt://${SERVICE.user}:${SERVICE.password}@127.0.0.1:${port}` : `mqtt://127.0.0.1:${port}`,
    dir,
    output: () => out,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
