/**
 * The connectivity lab's network (docs/lab.md "Topology"): a camera site and an app site, each a
 * host behind its own router, joined by a routed "internet" to the service's site. Every site
 * reaches every other through the internet router, so a packet crosses at least one L3 hop
 * between two NATs, as on the real internet (a TTL can expire there).
 *
 *   camera host ── camera router (NAT kind) ──┐
 *                                              internet router ── server (p2pd, two addresses)
 *   app host ──── app router (NAT kind) ──────┘
 *
 * Public addresses are taken from 11.0.0.0/8, which p2pd's default peer deny-list does not cover
 * (the documentation ranges are denied, docs/security.md), so the service relays to the sites'
 * mapped addresses exactly as it would on the internet: no `--allow-peer` anywhere.
 *
 * NAT kinds (RFC 4787 terms: mapping / filtering), each built from Linux netfilter:
 * - `none`: the host has a public address; the router only routes.
 * - `full-cone`: SNAT keeping the port (endpoint-independent mapping), every UDP packet to the
 *   public address is forwarded to the host (endpoint-independent filtering).
 * - `address-restricted`: the same mapping; inbound UDP to a mapping is forwarded only from an
 *   address that mapping has sent to (an ipset of address × port: address-dependent filtering).
 * - `port-restricted`: MASQUERADE: endpoint-independent mapping, conntrack lets in only replies
 *   from the exact address and port contacted (address-and-port-dependent filtering). What
 *   Linux-based home routers do.
 * - `symmetric`: MASQUERADE --random-fully: a new port per destination.
 * - `udp-blocked`: MASQUERADE and a firewall that lets out only TCP to ports 80 and 443.
 * Unsolicited packets are never forwarded into a LAN; the router itself takes them (see natRules).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { NatKind } from './theory.ts';

export { NAT_KINDS, type NatKind } from './theory.ts';
export type SiteRole = 'camera' | 'app';

export const SERVER_IP = '11.0.0.1';
export const SERVER_ALT_IP = '11.0.0.2';
const INET_SERVER_SIDE = '11.0.0.254';

const sh = (args: readonly string[]): string => execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export function labSupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, iptables)';
  try {
    sh(['ip', '-V']);
    sh(['iptables', '-V']);
  } catch {
    return 'the lab needs iproute2 and iptables (apt-get install iproute2 iptables)';
  }
  return undefined;
}

/** One network namespace: run a command in it, or start one (killed by destroy()). */
export class Namespace {
  readonly name: string;
  private readonly children: ChildProcess[] = [];

  constructor(name: string) {
    this.name = name;
    try { sh(['ip', 'netns', 'del', name]); } catch { /* absent */ }
    sh(['ip', 'netns', 'add', name]);
    this.exec(['ip', 'link', 'set', 'lo', 'up']);
  }

  exec(args: readonly string[]): string {
    return sh(['ip', 'netns', 'exec', this.name, ...args]);
  }

  /** Runs each line's words as a command (one netns exec per command; errors name the command). */
  run(lines: readonly (readonly string[])[]): void {
    for (const l of lines) {
      try {
        this.exec(l);
      } catch (err) {
        throw new Error(`${this.name}: ${l.join(' ')}: ${(err as { stderr?: string }).stderr?.trim() ?? String(err)}`, { cause: err });
      }
    }
  }

  spawn(args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const c = spawn('ip', ['netns', 'exec', this.name, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.children.push(c);
    return c;
  }

  destroy(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    try { sh(['ip', 'netns', 'del', this.name]); } catch { /* gone */ }
  }
}

/** Both ends of a veth pair, for link shaping (delay and loss on each end's egress). */
export interface LinkEnds {
  readonly a: { readonly ns: string; readonly dev: string };
  readonly b: { readonly ns: string; readonly dev: string };
}

function veth(a: Namespace, aDev: string, b: Namespace, bDev: string): LinkEnds {
  sh(['ip', 'link', 'add', aDev, 'netns', a.name, 'type', 'veth', 'peer', 'name', bDev, 'netns', b.name]);
  a.exec(['ip', 'link', 'set', aDev, 'up']);
  b.exec(['ip', 'link', 'set', bDev, 'up']);
  return { a: { ns: a.name, dev: aDev }, b: { ns: b.name, dev: bDev } };
}

export interface Site {
  readonly role: SiteRole;
  readonly kind: NatKind;
  /** The namespace where the camera or app runs. */
  readonly host: Namespace;
  readonly router: Namespace;
  /** The host's own address (private behind a NAT). */
  readonly hostIp: string;
  /** The site's address on the internet (the router's, or the host's with `none`). */
  readonly publicIp: string;
  /** The site's link to the internet router: `a` the router's end, `b` the internet's (shaped there). */
  readonly uplink: LinkEnds;
  destroy(): void;
}

/** The routed internet and the server site; sites come and go per lab cell. */
export class Internet {
  readonly id: string;
  readonly inet: Namespace;
  readonly server: Namespace;
  readonly serverLink: LinkEnds;
  private readonly sites = new Map<SiteRole, Site>();

  constructor(id = `pl${process.pid}`) {
    this.id = id;
    this.inet = new Namespace(`${id}i`);
    this.server = new Namespace(`${id}s`);
    try {
      this.inet.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      this.serverLink = veth(this.inet, `${id}is`, this.server, `${id}s0`);
      this.inet.run([['ip', 'addr', 'add', `${INET_SERVER_SIDE}/24`, 'dev', `${id}is`]]);
      this.server.run([
        ['ip', 'addr', 'add', `${SERVER_IP}/24`, 'dev', `${id}s0`],
        ['ip', 'addr', 'add', `${SERVER_ALT_IP}/24`, 'dev', `${id}s0`],
        ['ip', 'route', 'add', 'default', 'via', INET_SERVER_SIDE],
      ]);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Builds (or rebuilds) the camera's or the app's site with a NAT of `kind`. */
  addSite(role: SiteRole, kind: NatKind): Site {
    this.sites.get(role)?.destroy();
    const site = buildSite(this, role, kind);
    this.sites.set(role, site);
    return site;
  }

  destroy(): void {
    for (const s of this.sites.values()) s.destroy();
    this.sites.clear();
    this.server.destroy();
    this.inet.destroy();
  }
}

function buildSite(net: Internet, role: SiteRole, kind: NatKind): Site {
  const n = role === 'camera' ? 1 : 2;
  const tag = `${net.id}${role[0]}`;
  const router = new Namespace(`${tag}r`);
  let host: Namespace | undefined;
  const destroy = (): void => {
    host?.destroy();
    router.destroy();
    // The router's namespace outlives its name while a process is still in it (delayq, which
    // stops on SIGTERM after its report): its uplink would still hold `${tag}i` in the internet's
    // namespace, and the next site of this role could not be built ("File exists").
    try { net.inet.exec(['ip', 'link', 'del', `${tag}i`]); } catch { /* gone with the router */ }
    try { net.inet.exec(['ip', 'route', 'del', `11.1${n}.0.0/24`]); } catch { /* only with `none` */ }
  };
  try {
    host = new Namespace(`${tag}h`);
    const W = `${tag}w`;
    const L = `${tag}l`;
    const wanIp = `11.${n}.0.2`;
    const uplink = veth(router, W, net.inet, `${tag}i`);
    veth(router, L, host, `${tag}0`);
    net.inet.run([['ip', 'addr', 'add', `11.${n}.0.1/24`, 'dev', `${tag}i`]]);
    const lan = kind === 'none' ? `11.1${n}.0` : `10.${n}.0`;
    const hostIp = `${lan}.2`;
    router.run([
      ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'],
      ['ip', 'addr', 'add', `${wanIp}/24`, 'dev', W],
      ['ip', 'addr', 'add', `${lan}.1/24`, 'dev', L],
      ['ip', 'route', 'add', 'default', 'via', `11.${n}.0.1`],
    ]);
    host.run([
      ['ip', 'addr', 'add', `${hostIp}/24`, 'dev', `${tag}0`],
      ['ip', 'route', 'add', 'default', 'via', `${lan}.1`],
    ]);
    if (kind === 'none') net.inet.run([['ip', 'route', 'add', `${lan}.0/24`, 'via', wanIp]]);
    else router.run(natRules(kind, W, L, wanIp, hostIp));
    return { role, kind, host, router, hostIp, publicIp: kind === 'none' ? hostIp : wanIp, uplink, destroy };
  } catch (err) {
    destroy();
    throw err;
  }
}

/** The router's netfilter rules for a NAT kind (see the file's comment). */
function natRules(kind: Exclude<NatKind, 'none'>, W: string, L: string, wanIp: string, hostIp: string): string[][] {
  const ipt = (...a: string[]): string[] => ['iptables', ...a];
  // Nothing unsolicited is forwarded to the LAN; replies (and ICMP errors about them) are, and so
  // is what a DNAT rule below forwards on purpose. The router itself accepts what is sent to it,
  // as Linux does by default: an unsolicited datagram to a mapped port is delivered locally (and
  // answered with ICMP port unreachable), so conntrack records it, and the mapping a later
  // outbound packet would take may clash with that record (docs/lab.md "The conntrack clash").
  const guard = [
    ipt('-A', 'FORWARD', '-i', W, '-o', L, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED,DNAT', '-j', 'ACCEPT'),
    ipt('-A', 'FORWARD', '-i', W, '-o', L, '-j', 'DROP'),
  ];
  switch (kind) {
    case 'full-cone':
      return [
        ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', W, '-j', 'SNAT', '--to-source', wanIp),
        ipt('-t', 'nat', '-A', 'PREROUTING', '-i', W, '-p', 'udp', '-j', 'DNAT', '--to-destination', hostIp),
        ...guard,
      ];
    case 'address-restricted':
      return [
        ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', W, '-j', 'SNAT', '--to-source', wanIp),
        // Per mapping (the port, which SNAT keeps), remember each address it sent UDP to, for as
        // long as a mapping lives (RFC 4787 REQ-5: 2 minutes); forward UDP to that port from
        // those addresses only, whatever their port.
        ['ipset', 'create', 'contacted', 'hash:ip,port', 'timeout', '120'],
        ipt('-A', 'FORWARD', '-i', L, '-o', W, '-p', 'udp', '-j', 'SET', '--add-set', 'contacted', 'dst,src', '--exist'),
        ipt('-t', 'nat', '-A', 'PREROUTING', '-i', W, '-p', 'udp', '-m', 'set', '--match-set', 'contacted', 'src,dst', '-j', 'DNAT', '--to-destination', hostIp),
        // Filtering is per packet (RFC 4787 §5): an unsolicited datagram is dropped before
        // conntrack records it, so the same flow is let in once the host has sent to that address.
        // (Delivered to the router instead, it would be recorded as the router's own flow, and
        // every later packet of it refused: a port-restricted filter, not an address-restricted one.)
        ipt('-A', 'INPUT', '-i', W, '-p', 'udp', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'),
        ...guard,
      ];
    case 'port-restricted':
      return [ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', W, '-j', 'MASQUERADE'), ...guard];
    case 'symmetric':
      return [
        ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', W, '-p', 'udp', '-j', 'MASQUERADE', '--random-fully'),
        ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', W, '-j', 'MASQUERADE'),
        ...guard,
      ];
    case 'udp-blocked':
      return [
        ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', W, '-j', 'MASQUERADE'),
        ipt('-A', 'FORWARD', '-i', L, '-o', W, '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-j', 'ACCEPT'),
        ipt('-A', 'FORWARD', '-i', L, '-o', W, '-j', 'DROP'),
        ...guard,
      ];
  }
}
