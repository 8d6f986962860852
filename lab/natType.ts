/**
 * Runs `p2pd nat-type` from the lab's client against p2pd and against coturn (both with two IPs)
 * in the lab's server namespace, and returns both verdicts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SERVER_ALT_IP, SERVER_IP, type Lab } from './netns.ts';

const P2PD = fileURLToPath(new URL('../bin/p2pd.js', import.meta.url));

export interface Verdict {
  /** False when the server did not answer test I (not yet listening, or a loaded machine). */
  readonly reachable: boolean;
  readonly mapping: string;
  readonly filtering: string;
  readonly type: string;
  readonly natted: boolean;
}

function natType(lab: Lab, port: number): Verdict | undefined {
  try {
    const out = lab.exec(lab.client, [process.execPath, P2PD, 'nat-type', '--server', `${SERVER_IP}:${port}`, '--json', '--timeout-ms', '800']);
    return JSON.parse(out) as Verdict;
  } catch {
    return undefined;
  }
}

/**
 * The first verdict from a server that answered. The lab never blocks UDP, so "no answer to
 * test I" (UDP blocked) only means the server is not up yet or the machine is busy: ask again.
 */
async function waitVerdict(lab: Lab, port: number): Promise<Verdict> {
  for (let i = 0; i < 30; i++) {
    const v = natType(lab, port);
    if (v?.reachable) return v;
    await sleep(200);
  }
  throw new Error(`no verdict from the server on port ${port}`);
}

export async function compareVerdicts(lab: Lab): Promise<{ p2pd: Verdict; coturn: Verdict }> {
  lab.spawn(lab.server, [process.execPath, P2PD, 'serve', '--roles', 'stun', '--listen', SERVER_IP, '--alt-ip', SERVER_ALT_IP, '--port', '3478', '--workers', '1', '--http', '127.0.0.1:8080', '--log-level', 'warn']);
  lab.spawn(lab.server, ['turnserver', '-n', '-L', SERVER_IP, '-L', SERVER_ALT_IP, '--listening-port', '3578', '--no-tls', '--no-dtls', '--no-cli', '--no-tcp', '--realm', 'lab', '--log-file', '/dev/null', '--pidfile', `/tmp/${lab.id}-turnserver.pid`]);
  const p2pd = await waitVerdict(lab, 3478);
  const coturn = await waitVerdict(lab, 3578);
  return { p2pd, coturn };
}
