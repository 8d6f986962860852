/**
 * `p2pd token --sub ID --role app|device|operator [--devices a,b|*] [--ttl S]`: prints a signed client
 * token (HS256 with --jwt-secret / P2PD_JWT_SECRET, the key `p2pd serve` verifies with).
 */
import { conflict, invalidValue, missingValue } from '../errors.ts';
import { formatHelp, type OptionSpec } from '../config/options.ts';
import { getString, parseOptions } from '../config/parse.ts';
import { parseInteger } from '../config/values.ts';
import { CLIENT_ID_PATTERN, createHs256Signer, type TokenRole } from '../auth/token.ts';

export const TOKEN_OPTIONS: readonly OptionSpec[] = [
  { name: 'sub', kind: 'value', metavar: 'ID', help: 'the app or device id (also its MQTT username)' },
  { name: 'role', kind: 'value', metavar: 'app|device|operator', help: 'what the token is for (operator: the management API, e.g. GET /v1/usage)' },
  { name: 'devices', kind: 'value', metavar: 'a,b|*', help: 'apps: the device ids the app may reach (* = any)' },
  { name: 'ttl', kind: 'value', metavar: 'S', defaultText: '3600', help: 'seconds the token is valid' },
  { name: 'jwt-secret', kind: 'value', metavar: 'S', help: 'the HS256 key `p2pd serve` was given (required)' },
];

export const TOKEN_HELP = formatHelp('token', 'Prints a signed client token (JWT) for development and tests.', TOKEN_OPTIONS);

/** The token the options ask for (exported for tests; `token` prints it). */
export async function mintToken(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const raw = parseOptions(argv, TOKEN_OPTIONS, env);
  const sub = getString(raw, 'sub');
  if (sub === undefined) throw missingValue('sub');
  if (!CLIENT_ID_PATTERN.test(sub)) throw invalidValue('sub', sub, 'letters, digits and . _ : @ - (at most 128)');
  const role = getString(raw, 'role');
  if (role === undefined) throw missingValue('role');
  if (role !== 'app' && role !== 'device' && role !== 'operator') throw invalidValue('role', role, 'app, device or operator');
  const devicesRaw = getString(raw, 'devices');
  const devices = devicesRaw === undefined ? [] : devicesRaw.split(',').map((d) => d.trim()).filter(Boolean);
  for (const d of devices) {
    if (d !== '*' && !CLIENT_ID_PATTERN.test(d)) throw invalidValue('devices', devicesRaw as string, 'a comma-separated list of device ids, or *');
  }
  if (role !== 'app' && devices.length > 0) throw conflict('--devices is for app tokens');
  const ttlSec = parseInteger('ttl', getString(raw, 'ttl') ?? '3600', 1, 10 * 365 * 86400);
  const secret = getString(raw, 'jwt-secret');
  if (secret === undefined) throw missingValue('jwt-secret (or P2PD_JWT_SECRET)');
  return createHs256Signer(secret).sign({ sub, role: role as TokenRole, devices, ttlSec });
}

export async function token(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  process.stdout.write(`${await mintToken(argv, env)}\n`);
}
