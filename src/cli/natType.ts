/** `p2pd nat-type --server HOST[:PORT] [--json]`: RFC 5780 discovery and the classic NAT type. */
import { formatHelp, type OptionSpec } from '../config/options.ts';
import { getFlag, getString, parseOptions } from '../config/parse.ts';
import { invalidValue, missingValue } from '../errors.ts';
import { parseInteger } from '../config/values.ts';
import { discoverNat } from '../nat/discovery.ts';

const OPTIONS: readonly OptionSpec[] = [
  { name: 'server', kind: 'value', metavar: 'HOST[:PORT]', help: 'STUN server with RFC 5780 support (two IPs)' },
  { name: 'timeout-ms', kind: 'value', metavar: 'MS', defaultText: '2000', help: 'wait per request, retransmissions included' },
  { name: 'json', kind: 'flag', help: 'print one JSON object' },
];

export const NAT_TYPE_HELP = formatHelp('nat-type', 'Discovers the NAT mapping and filtering behaviour (RFC 5780) and the classic NAT type.', OPTIONS);

function parseServer(raw: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+|[0-9a-fA-F:]+(?=$)))(?::(\d+))?$/.exec(raw);
  if (!m) throw invalidValue('server', raw, 'HOST[:PORT]');
  return { host: (m[1] ?? m[2]) as string, port: m[3] === undefined ? 3478 : parseInteger('server', m[3], 1, 65535) };
}

export async function natType(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const raw = parseOptions(argv, OPTIONS, env);
  const server = getString(raw, 'server');
  if (server === undefined) throw missingValue('server');
  const { host, port } = parseServer(server);
  const timeoutMs = parseInteger('timeout-ms', getString(raw, 'timeout-ms') ?? '2000', 100, 60_000);
  const r = await discoverNat({ host, port, timeoutMs });
  if (getFlag(raw, 'json')) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const fmt = (a: { address: string; port: number } | undefined): string => (a ? `${a.address}:${a.port}` : '-');
  process.stdout.write([
    `server:     ${host}:${port} (other address ${fmt(r.otherAddress)})`,
    `local:      ${fmt(r.local)}`,
    `mapped:     ${fmt(r.mapped)}`,
    `mapping:    ${r.mapping ?? '-'}`,
    `filtering:  ${r.filtering ?? '-'}`,
    `NAT type:   ${r.type}`,
    '',
  ].join('\n'));
}
