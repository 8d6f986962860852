/**
 * A second host on this machine for tests that need a source other than loopback: a network
 * namespace joined to the test's own namespace by a veth pair on a private /30.
 *
 *   test's namespace (hostIp, e.g. 10.201.7.1) ── veth ── namespace (nsIp, e.g. 10.201.7.2)
 *
 * A server the test starts on 0.0.0.0 is reached from the namespace at `hostIp` and sees the
 * caller as `nsIp`: an untrusted-network client. A process started inside the namespace sees a
 * host whose only address (besides loopback) is private. Needs root and iproute2; `netnsSupported()`
 * says why not otherwise. `destroy()` kills what was started and removes the namespace, and runs
 * on process exit too, so a failed test leaves nothing behind.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const sh = (args: string[]): string => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export function netnsSupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  try {
    sh(['ip', '-V']);
  } catch {
    return 'needs iproute2 (apt-get install iproute2)';
  }
  return undefined;
}

export interface NetNs {
  readonly name: string;
  /** This side of the link, as the namespace reaches it. */
  readonly hostIp: string;
  /** The namespace's only non-loopback address. */
  readonly nsIp: string;
  /** Runs a command in the namespace and returns its stdout. */
  exec(args: string[]): string;
  /** Starts a command in the namespace; killed by destroy(). */
  spawn(args: string[], opts?: SpawnOptions): ChildProcess;
  destroy(): void;
}

let made = 0;

export function createNetNs(): NetNs {
  const k = made++;
  const tag = `${process.pid % 100000}x${k}`;
  const name = `p2t${tag}`;
  const third = process.pid % 250;
  const fourth = (k % 63) * 4;
  const hostIp = `10.201.${third}.${fourth + 1}`;
  const nsIp = `10.201.${third}.${fourth + 2}`;
  const hostDev = `p2t${tag}a`.slice(0, 15);
  const nsDev = `p2t${tag}b`.slice(0, 15);
  const children: ChildProcess[] = [];
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', destroy);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    try { sh(['ip', 'netns', 'del', name]); } catch { /* absent */ }
    try { sh(['ip', 'link', 'del', hostDev]); } catch { /* gone with the namespace */ }
  };
  try {
    sh(['ip', 'netns', 'add', name]);
    sh(['ip', 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', nsDev, 'netns', name]);
    sh(['ip', 'addr', 'add', `${hostIp}/30`, 'dev', hostDev]);
    sh(['ip', 'link', 'set', hostDev, 'up']);
    const inNs = (args: string[]): string => sh(['ip', 'netns', 'exec', name, ...args]);
    inNs(['ip', 'addr', 'add', `${nsIp}/30`, 'dev', nsDev]);
    inNs(['ip', 'link', 'set', nsDev, 'up']);
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(['ip', 'route', 'add', 'default', 'via', hostIp]);
  } catch (err) {
    destroy();
    throw err;
  }
  process.once('exit', destroy);
  return {
    name,
    hostIp,
    nsIp,
    exec: (args) => sh(['ip', 'netns', 'exec', name, ...args]),
    spawn: (args, opts = {}) => {
      const c = spawn('ip', ['netns', 'exec', name, ...args], { stdio: 'ignore', ...opts });
      children.push(c);
      return c;
    },
    destroy,
  };
}
