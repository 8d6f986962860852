/**
 * Run inside a network namespace next to `p2pd serve` (test/integration/security.peers.test.ts):
 * gets an app's development token and a session for a device from the server on loopback, then
 * with the session's TURN credentials makes two allocations on the host's only private address
 * and tries its peers: the STUN port and a UDP socket of its own on that address (both must be
 * refused), and the other allocation's relay port (must work). Prints one JSON line of outcomes.
 *
 *   node test/helpers/relayProbe.ts HTTP_URL HOST_IP DEVICE_ID
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TurnTestClient, TurnError, UdpPeer } from './turnClient.ts';

const [httpUrl, hostIp, deviceId] = process.argv.slice(2) as [string, string, string];

const outcome = async (p: Promise<unknown>): Promise<number | 'ok'> => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof TurnError) return e.code;
    throw e;
  }
};

async function main(): Promise<void> {
  const tok = await (await fetch(`${httpUrl}/v1/dev/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'app', devices: [deviceId] }),
  })).json() as { token: string };
  const session = await (await fetch(`${httpUrl}/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok.token}` }, body: JSON.stringify({ deviceId }),
  })).json() as { iceServers: { urls: string[]; username?: string; credential?: string }[] };
  const turn = session.iceServers.find((s) => s.username !== undefined && s.urls.some((u) => u.startsWith('turn:')));
  if (!turn?.username || !turn.credential) throw new Error(`no TURN server in ${JSON.stringify(session)}`);
  const port = Number(/:(\d+)\?/.exec(turn.urls[0]!)?.[1] ?? 3478);
  const opts = { host: hostIp, port, username: turn.username, password: turn.credential, localAddress: hostIp };
  const a = await TurnTestClient.connect(opts);
  const b = await TurnTestClient.connect(opts);
  const own = await UdpPeer.bind(hostIp);
  try {
    const relayA = (await a.allocate()).relayed[0]!;
    const relayB = (await b.allocate()).relayed[0]!;
    const stunPort = { family: 4 as const, address: hostIp, port };
    const r: Record<string, unknown> = { relayA, relayB, ownSocket: own.address };
    r.permissionToHostIp = await outcome(a.createPermission({ family: 4, address: hostIp, port: 0 }));
    r.channelBindStunPort = await outcome(a.channelBind(0x4000, stunPort));
    r.channelBindOwnSocket = await outcome(a.channelBind(0x4001, own.address));
    a.sendIndication(stunPort, Buffer.from('to the STUN port'));
    a.sendIndication(own.address, Buffer.from('must not arrive'));
    // Relay-to-relay: B lets A's relay in, A reaches B's live relay port by Send and by channel.
    r.permissionBtoA = await outcome(b.createPermission(relayA));
    a.sendIndication(relayB, Buffer.from('send to relay B'));
    r.sendToRelayB = (await b.nextData(5000))?.data.toString() ?? null;
    r.channelBindRelayB = await outcome(a.channelBind(0x4002, relayB));
    a.sendChannelData(0x4002, Buffer.from('channel to relay B'));
    r.channelToRelayB = (await b.nextData(5000))?.data.toString() ?? null;
    // The refused datagrams left A's relay socket before these (if they left at all).
    await sleep(50);
    r.ownSocketReceived = own.received.map((x) => x.data.toString());
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    a.close();
    b.close();
    own.close();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
