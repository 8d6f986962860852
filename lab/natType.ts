/**
 * NAT classification in the lab: `p2pd nat-type` from a site's host against p2pd and against
 * coturn's turnserver, both on the server site with its two addresses (RFC 5780), so the verdict
 * behind each NAT kind can be checked against theory (theory.ts EXPECTED_NAT_TYPE) and against
 * a second implementation.
 */
import type { ClassicNatType } from '../src/nat/classify.ts';
import { Output, P2PD } from './service.ts';
import { SERVER_ALT_IP, SERVER_IP, type Namespace } from './sites.ts';

export const P2PD_STUN_PORT = 3478;
export const COTURN_PORT = 3578;

export interface Verdict {
  /** False when the server did not answer test I (UDP blocked on the way). */
  readonly reachable: boolean;
  readonly mapping: string;
  readonly filtering: string;
  readonly type: ClassicNatType;
  readonly natted: boolean;
}

/** One verdict: each request waits up to 2 s, retransmissions included. */
export function natType(host: Namespace, port: number): Verdict {
  const out = host.exec([process.execPath, P2PD, 'nat-type', '--server', `${SERVER_IP}:${port}`, '--json', '--timeout-ms', '2000']);
  return JSON.parse(out) as Verdict;
}

/**
 * A verdict held against what theory expects. RFC 5780 reads a missing answer as filtering: on a
 * loaded machine one answer can come after its 2 s and make a verdict stricter than the NAT (or
 * none, "symmetric UDP firewall"). An answer is conclusive, its absence is not, so a verdict other
 * than `expected` is taken again, at most 3 tries in all.
 */
export function settledNatType(host: Namespace, port: number, expected: string): Verdict {
  let v = natType(host, port);
  for (let i = 1; i < 3 && v.type !== expected; i++) v = natType(host, port);
  return v;
}

/**
 * Starts coturn (STUN only, both addresses) on the server site and waits until it answers a
 * Binding from the internet router's namespace, so a verdict is never taken against a server
 * still starting.
 */
export async function startCoturn(server: Namespace, probeFrom: Namespace): Promise<{ stop(): void }> {
  const child = server.spawn(['turnserver', '-n', '-L', SERVER_IP, '-L', SERVER_ALT_IP, '--listening-port', String(COTURN_PORT),
    '--no-tls', '--no-dtls', '--no-cli', '--no-tcp', '--realm', 'lab', '--log-file', 'stdout', '--pidfile', `/tmp/${server.name}-turnserver.pid`]);
  const out = new Output(child);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (natType(probeFrom, COTURN_PORT).reachable) break;
    } catch { /* not up yet */ }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`coturn did not answer within 30 s:\n${out.lines.slice(-10).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { stop: () => { child.kill('SIGKILL'); } };
}
