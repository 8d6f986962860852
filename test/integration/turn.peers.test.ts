/**
 * Safe by default (docs/security.md): every denied peer range gets 403, in each of
 * its spellings; --allow-peer opens a range, and then the same peer works.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { P2pdProcess } from '../helpers/p2pd.ts';
import { TurnTestClient, TurnError, UdpPeer, startTurnServers } from '../helpers/turnClient.ts';
import type { TransportAddress } from '../../src/stun/index.ts';

const DENIED: readonly [string, string][] = [
  ['loopback', '127.0.0.1'],
  ['loopback, elsewhere in 127/8', '127.5.6.7'],
  ['"this network" 0.0.0.0/8', '0.0.0.0'],
  ['RFC 1918 10/8', '10.1.2.3'],
  ['RFC 1918 172.16/12', '172.16.5.4'],
  ['RFC 1918 172.31.x', '172.31.255.254'],
  ['RFC 1918 192.168/16', '192.168.1.1'],
  ['CGNAT 100.64/10', '100.64.0.1'],
  ['cloud metadata 169.254.169.254', '169.254.169.254'],
  ['multicast 224/4', '224.0.0.251'],
  ['broadcast', '255.255.255.255'],
  ['documentation TEST-NET-1', '192.0.2.10'],
  ['benchmarking 198.18/15', '198.18.0.1'],
  ['IPv6 loopback ::1', '::1'],
  ['IPv6 unspecified ::', '::'],
  ['IPv4-mapped loopback ::ffff:127.0.0.1', '::ffff:127.0.0.1'],
  ['IPv4-mapped metadata ::ffff:169.254.169.254', '::ffff:169.254.169.254'],
  ['NAT64 loopback 64:ff9b::7f00:1', '64:ff9b::7f00:1'],
  ['NAT64 RFC 1918 64:ff9b::a00:1', '64:ff9b::a00:1'],
  ['6to4 loopback 2002:7f00:1::', '2002:7f00:1::'],
  ['6to4 RFC 1918 2002:c0a8:101::1', '2002:c0a8:101::1'],
  ['unique local fc00::/7', 'fd12:3456::1'],
  ['link-local fe80::/10', 'fe80::1'],
  ['IPv6 multicast ff00::/8', 'ff02::1'],
  ['IPv6 documentation 2001:db8::/32', '2001:db8::1'],
];

const RELAY_ADDRESSES = new Set(['127.0.0.1', '::1']);
const addr = (address: string, port = 4000): TransportAddress => ({ family: address.includes(':') ? 6 : 4, address, port });

describe('peer address filter', () => {
  const servers: P2pdProcess[] = [];
  let closed: P2pdProcess;
  let open: P2pdProcess;
  const clients: TurnTestClient[] = [];
  const connect = async (server: P2pdProcess): Promise<TurnTestClient> => {
    const c = await TurnTestClient.connect({ port: server.port, username: 'u', password: 'p' });
    clients.push(c);
    return c;
  };

  before(async () => {
    [closed, open] = await startTurnServers([
      { args: ['--roles', 'stun,turn', '--user', 'u:p'] },
      {
        args: ['--roles', 'stun,turn', '--user', 'u:p',
          ...['127.0.0.0/8', '0.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16',
            '224.0.0.0/4', '240.0.0.0/4', '192.0.2.0/24', '198.18.0.0/15', '::1/128', '::/128', 'fc00::/7', 'fe80::/10',
            'ff00::/8', '2001:db8::/32'].flatMap((c) => ['--allow-peer', c])],
      },
    ], servers) as [P2pdProcess, P2pdProcess];
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  for (const [name, ip] of DENIED) {
    test(`refuses a peer in ${name} (${ip}) with 403, and --allow-peer lets it through`, async () => {
      const c = await connect(closed);
      await c.allocate({ family: ip.includes(':') ? 6 : 4 });
      // The server's own relay addresses (it listens on 127.0.0.1, relays on 127.0.0.1 and ::1)
      // are permitted IPs, for relay-to-relay; their ports other than live relay ports are not.
      if (RELAY_ADDRESSES.has(ip)) await c.createPermission(addr(ip));
      else await assert.rejects(c.createPermission(addr(ip)), (e: unknown) => e instanceof TurnError && e.code === 403);
      await assert.rejects(c.channelBind(0x4000, addr(ip)), (e: unknown) => e instanceof TurnError && e.code === 403);
      const o = await connect(open);
      await o.allocate({ family: ip.includes(':') ? 6 : 4 });
      await o.createPermission(addr(ip));
      await o.channelBind(0x4000, addr(ip));
    });
  }

  test('one denied peer among allowed ones: nothing is installed (all or nothing)', async () => {
    const c = await connect(closed);
    await c.allocate();
    await assert.rejects(c.createPermission(addr('8.8.8.8'), addr('10.0.0.1')), (e: unknown) => e instanceof TurnError && e.code === 403);
  });

  test('public addresses are allowed by default', async () => {
    const c = await connect(closed);
    await c.allocate();
    await c.createPermission(addr('8.8.8.8'), addr('1.1.1.1'), addr('93.184.216.34'));
    const c6 = await connect(closed);
    await c6.allocate({ family: 6 });
    await c6.createPermission(addr('2606:4700:4700::1111'), addr('2001:4860:4860::8888'));
  });

  test('a Send indication to a denied peer goes nowhere; with --allow-peer the same loopback peer gets it', async () => {
    const x = await UdpPeer.bind();
    try {
      const c = await connect(closed);
      await c.allocate();
      c.sendIndication(x.address, Buffer.from('must not arrive'));
      const o = await connect(open);
      await o.allocate();
      await o.createPermission(x.address);
      o.sendIndication(x.address, Buffer.from('allowed'));
      assert.equal((await x.next())?.data.toString(), 'allowed');
      assert.equal(x.received.length, 0);
    } finally {
      x.close();
    }
  });

  test('with --allow-peer ::1/128 an IPv6 loopback peer works through an IPv6 relay', async () => {
    const x = await UdpPeer.bind('::1');
    x.echo = true;
    try {
      const o = await connect(open);
      await o.allocate({ family: 6 });
      await o.channelBind(0x4321, x.address);
      o.sendChannelData(0x4321, Buffer.from('ping6'));
      assert.equal((await o.nextData())?.data.toString(), 'ping6');
    } finally {
      x.close();
    }
  });
});
