/**
 * The NAT lab: network namespaces emulating the classic NAT types in front of one client, all on
 * this machine (needs root and iptables). Topology per NAT type:
 *
 *   client ns (192.168.77.2) ── lan ── router ns (Linux NAT) ── wan ── server ns (two IPs)
 *
 * The server namespace holds the "public" addresses 172.30.0.1 and 172.30.0.2 where the lab runs
 * p2pd and coturn; nothing here leaves the machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export type LabNat = 'none' | 'full-cone' | 'port-restricted-cone' | 'symmetric';

export const SERVER_IP = '172.30.0.1';
export const SERVER_ALT_IP = '172.30.0.2';

const sh = (args: string[]): string => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const nsExec = (ns: string, args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args]);

export function labSupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'the NAT lab needs root (network namespaces, iptables)';
  try {
    sh(['ip', '-V']);
    sh(['iptables', '-V']);
  } catch {
    return 'the NAT lab needs iproute2 and iptables (apt-get install iproute2 iptables)';
  }
  return undefined;
}

export interface Lab {
  readonly id: string;
  readonly server: string;
  readonly client: string;
  /** Runs a command in a namespace and returns its stdout. */
  exec(ns: string, args: string[]): string;
  spawn(ns: string, args: string[]): ChildProcess;
  destroy(): void;
}

/** Builds the three namespaces for `nat`; `destroy()` removes them (also on a failed build). */
export function createLab(nat: LabNat): Lab {
  const id = `p2pd${process.pid % 10000}${nat.replace(/[^a-z]/g, '').slice(0, 4)}`;
  const server = `${id}s`;
  const router = `${id}r`;
  const client = `${id}c`;
  const children: ChildProcess[] = [];
  const destroy = (): void => {
    for (const c of children) c.kill('SIGKILL');
    for (const ns of [client, router, server]) {
      try { sh(['ip', 'netns', 'del', ns]); } catch { /* absent */ }
    }
  };
  destroy();
  try {
    for (const ns of [server, router, client]) sh(['ip', 'netns', 'add', ns]);
    // wan: router <-> server; lan: client <-> router
    sh(['ip', 'link', 'add', `${id}w0`, 'netns', router, 'type', 'veth', 'peer', 'name', `${id}w1`, 'netns', server]);
    sh(['ip', 'link', 'add', `${id}l0`, 'netns', client, 'type', 'veth', 'peer', 'name', `${id}l1`, 'netns', router]);
    nsExec(server, ['ip', 'addr', 'add', `${SERVER_IP}/24`, 'dev', `${id}w1`]);
    nsExec(server, ['ip', 'addr', 'add', `${SERVER_ALT_IP}/24`, 'dev', `${id}w1`]);
    nsExec(router, ['ip', 'addr', 'add', '172.30.0.254/24', 'dev', `${id}w0`]);
    nsExec(router, ['ip', 'addr', 'add', '192.168.77.1/24', 'dev', `${id}l1`]);
    nsExec(client, ['ip', 'addr', 'add', '192.168.77.2/24', 'dev', `${id}l0`]);
    for (const [ns, dev] of [[server, `${id}w1`], [router, `${id}w0`], [router, `${id}l1`], [client, `${id}l0`]] as const) {
      nsExec(ns, ['ip', 'link', 'set', dev, 'up']);
      nsExec(ns, ['ip', 'link', 'set', 'lo', 'up']);
    }
    nsExec(client, ['ip', 'route', 'add', 'default', 'via', '192.168.77.1']);
    nsExec(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    if (nat === 'none') {
      // A plain router: the server routes back to the client's own address.
      nsExec(server, ['ip', 'route', 'add', '192.168.77.0/24', 'via', '172.30.0.254']);
    } else if (nat === 'port-restricted-cone') {
      // Linux MASQUERADE keeps one mapping per source (endpoint-independent) and conntrack only
      // lets in replies from the exact address and port contacted.
      nsExec(router, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', `${id}w0`, '-j', 'MASQUERADE']);
    } else if (nat === 'symmetric') {
      // A fresh random port for every destination: address-and-port-dependent mapping.
      nsExec(router, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', `${id}w0`, '-p', 'udp', '-j', 'MASQUERADE', '--random-fully']);
    } else {
      // Full cone: the mapping keeps the client's port, and anything arriving at the router's
      // public address is forwarded to the client, whoever sends it.
      nsExec(router, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', `${id}w0`, '-p', 'udp', '-j', 'SNAT', '--to-source', '172.30.0.254']);
      nsExec(router, ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-i', `${id}w0`, '-p', 'udp', '-j', 'DNAT', '--to-destination', '192.168.77.2']);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    id,
    server,
    client,
    exec: (ns, args) => nsExec(ns, args),
    spawn: (ns, args) => {
      const c = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
      children.push(c);
      return c;
    },
    destroy,
  };
}
