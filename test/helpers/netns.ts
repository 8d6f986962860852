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
 *
 * With `via`, the link's other end sits in that namespace instead of the test's, so a chain
 * test ── A ── B needs no forwarding anywhere: B reaches every address of A (A delivers them
 * locally) and nothing further.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { claimSlot } from './slotLock.ts';

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
  /** This side of the link (in `via` when given), as the namespace reaches it. */
  readonly hostIp: string;
  /** The namespace's only non-loopback address. */
  readonly nsIp: string;
  /** The link's device on this side (in `via` when given), and inside the namespace. */
  readonly hostDev: string;
  readonly nsDev: string;
  /** Runs a command in the namespace and returns its stdout. */
  exec(args: string[]): string;
  /** Starts a command in the namespace; killed by destroy(). */
  spawn(args: string[], opts?: SpawnOptions): ChildProcess;
  destroy(): void;
}

export interface NetNsOptions {
  /** Names of the namespace and its interfaces start with this (default `p2t`; at most 4 characters). */
  readonly prefix?: string;
  /** Put the other end of the link in this namespace rather than in the test's own. */
  readonly via?: NetNs;
  /**
   * Names the namespace's processes resolve (name → address): its own /etc/hosts, which
   * `ip netns exec` mounts over /etc/hosts from /etc/netns/<name>/hosts.
   */
  readonly hosts?: Readonly<Record<string, string>>;
}

let made = 0;
let claimed: number | undefined;

/**
 * The third octet of this process's links, 10.201.<third>.0/24, claimed among the test processes
 * that run at once (slotLock.ts): two processes on one /24 would route each other's replies into
 * the wrong veth.
 */
function claimSubnet(): number {
  if (claimed !== undefined) return claimed;
  const lock = claimSlot('/run/p2pd-netns', 250, process.pid % 250);
  if (lock === undefined) throw new Error('no free 10.201.x.0/24 for a test namespace (250 test processes at once?)');
  process.once('exit', lock.release);
  claimed = lock.slot;
  return lock.slot;
}

export function createNetNs(opts: NetNsOptions = {}): NetNs {
  const k = made++;
  const prefix = opts.prefix ?? 'p2t';
  const tag = `${process.pid % 100000}x${k}`;
  const name = `${prefix}${tag}`;
  const third = claimSubnet();
  const fourth = (k % 63) * 4;
  const hostIp = `10.201.${third}.${fourth + 1}`;
  const nsIp = `10.201.${third}.${fourth + 2}`;
  const hostDev = `${prefix}${tag}a`.slice(0, 15);
  const nsDev = `${prefix}${tag}b`.slice(0, 15);
  // Commands for the link's other end: in `via`, or here.
  const atHost = (args: string[]): string[] => (opts.via === undefined ? args : ['ip', 'netns', 'exec', opts.via.name, ...args]);
  const children: ChildProcess[] = [];
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', destroy);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    try { sh(['ip', 'netns', 'del', name]); } catch { /* absent */ }
    try { sh(atHost(['ip', 'link', 'del', hostDev])); } catch { /* gone with the namespace */ }
    if (opts.hosts !== undefined) rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
  };
  try {
    sh(['ip', 'netns', 'add', name]);
    sh(atHost(['ip', 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', nsDev, 'netns', name]));
    sh(atHost(['ip', 'addr', 'add', `${hostIp}/30`, 'dev', hostDev]));
    sh(atHost(['ip', 'link', 'set', hostDev, 'up']));
    const inNs = (args: string[]): string => sh(['ip', 'netns', 'exec', name, ...args]);
    inNs(['ip', 'addr', 'add', `${nsIp}/30`, 'dev', nsDev]);
    inNs(['ip', 'link', 'set', nsDev, 'up']);
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(['ip', 'route', 'add', 'default', 'via', hostIp]);
    if (opts.hosts !== undefined) {
      mkdirSync(`/etc/netns/${name}`, { recursive: true });
      const lines = ['127.0.0.1 localhost', '::1 localhost', ...Object.entries(opts.hosts).map(([n, ip]) => `${ip} ${n}`)];
      writeFileSync(`/etc/netns/${name}/hosts`, `${lines.join('\n')}\n`);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  process.once('exit', destroy);
  return {
    name,
    hostIp,
    nsIp,
    hostDev,
    nsDev,
    exec: (args) => sh(['ip', 'netns', 'exec', name, ...args]),
    spawn: (args, opts = {}) => {
      const c = spawn('ip', ['netns', 'exec', name, ...args], { stdio: 'ignore', ...opts });
      children.push(c);
      return c;
    },
    destroy,
  };
}
