import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadConfig } from './config.ts';
import { closestKey, fileKeys, parseConfigText } from './file.ts';
import { SERVE_OPTIONS } from './options.ts';
import { P2pdError } from '../errors.ts';

const EXAMPLE = fileURLToPath(new URL('../../docs/p2pd.example.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'p2pd-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}

/** The error `fn` throws: a P2pdError, with its code and message. */
function thrown(fn: () => unknown): P2pdError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof P2pdError, `not a P2pdError: ${String(err)}`);
    return err;
  }
  assert.fail('did not throw');
}

test('precedence: option > P2PD_* > file > default', () => {
  const f = file('port: 4000\nrealm: from-file\nregion: file-region\nmax-bps: 5\n');
  const c = loadConfig(['--config', f, '--port', '4001'], { P2PD_PORT: '4002', P2PD_REALM: 'from-env' });
  assert.equal(c.port, 4001, 'the option wins');
  assert.equal(c.realm, 'from-env', 'the environment wins over the file');
  assert.equal(c.region, 'file-region', 'the file wins over the default');
  assert.equal(c.maxBps, 5);
  assert.equal(c.sessionTtlSec, 86400, 'what no layer sets keeps its default');
  assert.equal(loadConfig([], { P2PD_CONFIG: f }).region, 'file-region', 'P2PD_CONFIG names the file too');
});

test('lists are YAML lists (one value is a list of one); an option or variable replaces the whole list', () => {
  const f = file('allow-peer:\n  - 10.0.0.0/8\n  - "fd00::/8"\nuser: alice:wonder:land\ndeny-peer: []\n');
  const c = loadConfig(['--config', f]);
  assert.deepEqual(c.allowPeers.map((p) => p.text), ['10.0.0.0/8', 'fd00::/8']);
  assert.deepEqual(c.users, [{ name: 'alice', password: 'wonder:land' }]);
  assert.deepEqual(c.denyPeers, []);
  assert.deepEqual(loadConfig(['--config', f, '--allow-peer', '192.168.0.0/16']).allowPeers.map((p) => p.text), ['192.168.0.0/16']);
  assert.deepEqual(loadConfig(['--config', f], { P2PD_ALLOW_PEER: '172.16.0.0/12' }).allowPeers.map((p) => p.text), ['172.16.0.0/12']);
});

test('relay-ip and external-ip: a list, or one value holding a comma-separated list', () => {
  const listed = loadConfig(['--config', file('relay-ip:\n  - 10.0.0.1\n  - 10.0.0.2\nexternal-ip: [203.0.113.1/10.0.0.1, 203.0.113.2/10.0.0.2]\n')]);
  assert.deepEqual(listed.relayIps, ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(listed.externalIpPairs.map((p) => p.publicIp), ['203.0.113.1', '203.0.113.2']);
  assert.deepEqual(loadConfig(['--config', file('relay-ip: 10.0.0.1,10.0.0.2\n')]).relayIps, ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(loadConfig(['--config', file('relay-ip: 10.0.0.1\nexternal-ip: 203.0.113.1\n')]).externalIp, '203.0.113.1', 'one address, as before');
});

test('flags take true/false (yes/no, on/off); P2PD_*=false turns off what the file turns on', () => {
  assert.equal(loadConfig(['--config', file('secure-stun: true\n')]).secureStun, true);
  assert.equal(loadConfig(['--config', file('secure-stun: off\n')]).secureStun, false);
  assert.equal(loadConfig(['--config', file('secure-stun: yes\n')], { P2PD_SECURE_STUN: 'false' }).secureStun, false);
  assert.equal(thrown(() => loadConfig(['--config', file('secure-stun: maybe\n')])).code, 'CONFIG_INVALID_VALUE');
});

test('scalars stay the text written: a secret of digits, 0x10 or 1e3 is not turned into a number', () => {
  const c = loadConfig(['--config', file('auth-secret: 000123\njwt-secret: 0x10\nrealm: 1e3\n')]);
  assert.equal(c.authSecret, '000123');
  assert.equal(c.jwtSecret, '0x10');
  assert.equal(c.realm, '1e3');
  // And a number the option does not take is refused as the option refuses it.
  assert.equal(thrown(() => loadConfig(['--config', file('port: 0x10\n')])).message, thrown(() => loadConfig(['--port', '0x10'])).message);
});

test('a wrong value gets the error the option gets', () => {
  for (const [yaml, argv] of [
    ['port: 70000', ['--port', '70000']],
    ['listen: example.com', ['--listen', 'example.com']],
    ['relay-ports: 6000-5000', ['--relay-ports', '6000-5000']],
    ['allow-peer: [10.0.0.0/33]', ['--allow-peer', '10.0.0.0/33']],
    ['roles: stun,bogus', ['--roles', 'stun,bogus']],
    ['tls-cert: /etc/hostname', ['--tls-cert', '/etc/hostname']],
    ['auth-secret-previous: old', ['--auth-secret-previous', 'old']],
  ] as const) {
    const fromFile = thrown(() => loadConfig(['--config', file(`${yaml}\n`)]));
    const fromOption = thrown(() => loadConfig([...argv]));
    assert.equal(fromFile.code, fromOption.code, yaml);
    assert.equal(fromFile.message, fromOption.message, yaml);
  }
});

test('a value of the wrong shape is refused, naming the option', () => {
  const e1 = thrown(() => parseConfigText('port: [1, 2]\n', 'f.yaml', SERVE_OPTIONS));
  assert.equal(e1.code, 'CONFIG_INVALID_VALUE');
  assert.match(e1.message, /--port.*line 1 of f\.yaml.*not a list/);
  assert.equal(thrown(() => parseConfigText('realm: {a: 1}\n', 'f.yaml', SERVE_OPTIONS)).code, 'CONFIG_INVALID_VALUE');
  assert.equal(thrown(() => parseConfigText('allow-peer: [[10.0.0.0/8]]\n', 'f.yaml', SERVE_OPTIONS)).code, 'CONFIG_INVALID_VALUE');
  for (const empty of ['realm:\n', 'realm: ~\n', 'realm: null\n', 'user: [a:b, ~]\n']) {
    assert.equal(thrown(() => parseConfigText(empty, 'f.yaml', SERVE_OPTIONS)).code, 'CONFIG_MISSING_VALUE', empty);
  }
  assert.equal(parseConfigText('realm: ""\n', 'f.yaml', SERVE_OPTIONS).get('realm'), '', 'a quoted empty string is a value (the option judges it)');
});

test('an unknown key is an error naming it and the option it was probably meant to be', () => {
  const e = thrown(() => loadConfig(['--config', file('port: 3478\nalow-peer: [10.0.0.0/8]\n')]));
  assert.equal(e.code, 'CONFIG_UNKNOWN_OPTION');
  assert.match(e.message, /"alow-peer" in .*line 2 \(did you mean allow-peer\?\)/);
  assert.match(thrown(() => parseConfigText('redis_url: redis://r\n', 'f.yaml', SERVE_OPTIONS)).message, /did you mean redis-url\?/);
  assert.match(thrown(() => parseConfigText('--port: 1\n', 'f.yaml', SERVE_OPTIONS)).message, /did you mean port\?/);
  assert.doesNotMatch(thrown(() => parseConfigText('colour: blue\n', 'f.yaml', SERVE_OPTIONS)).message, /did you mean/);
  assert.equal(closestKey('jwt-secert', fileKeys(SERVE_OPTIONS)), 'jwt-secret', 'nearest by edit distance');
  assert.equal(closestKey('jwt-secret-prev', fileKeys(SERVE_OPTIONS)), 'jwt-secret-previous', 'the one option it begins');
  const nested = thrown(() => parseConfigText('config: other.yaml\n', 'f.yaml', SERVE_OPTIONS));
  assert.equal(nested.code, 'CONFIG_FILE_INVALID', 'a file does not name another');
});

test('malformed YAML and files that are not a mapping are CONFIG_FILE_INVALID, with the line', () => {
  const cases: [string, RegExp][] = [
    ['port: 3478\nallow-peer: [10.0.0.0/8,\n', /line 3/],
    ['port: 3478\nport: 3479\n', /unique.*line 2/],
    ['realm: "open\n', /line 2/],
    ['port: 1\n\tregion: x\n', /line 2/],
    ['---\nport: 1\n---\nport: 2\n', /multiple documents.*line 3/],
    ['- port\n', /mapping/],
    ['just text\n', /mapping/],
    ['? [a, b]\n: 1\n', /key must be an option name/],
    ['allow-peer: [*nowhere]\n', /alias/],
  ];
  for (const [text, why] of cases) {
    const e = thrown(() => parseConfigText(text, 'p2pd.yaml', SERVE_OPTIONS));
    assert.equal(e.code, 'CONFIG_FILE_INVALID', text);
    assert.match(e.message, /^p2pd\.yaml: /);
    assert.match(e.message, why, text);
  }
  const missing = thrown(() => loadConfig(['--config', join(dir, 'nope.yaml')]));
  assert.equal(missing.code, 'CONFIG_FILE_INVALID');
  assert.match(missing.message, /nope\.yaml: cannot be read \(ENOENT\)/);
  assert.equal(parseConfigText('# nothing but a comment\n', 'f.yaml', SERVE_OPTIONS).size, 0, 'an empty file sets nothing');
});

test('random text and random YAML never fail with anything but a CONFIG_ error', () => {
  const onlyConfigErrors = (f: () => unknown): void => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof P2pdError && err.code.startsWith('CONFIG_'))) throw err;
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => {
    onlyConfigErrors(() => parseConfigText(text, 'f.yaml', SERVE_OPTIONS));
  }), { numRuns: 400 });
  const keys = fc.constantFrom(...fileKeys(SERVE_OPTIONS), 'nope', 'config');
  const value = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }));
  fc.assert(fc.property(fc.dictionary(keys, value, { maxKeys: 6 }), (obj) => {
    // Through loadConfig too: every value reaches the option parsers (files named are not read).
    const text = stringify(obj);
    onlyConfigErrors(() => parseConfigText(text, 'f.yaml', SERVE_OPTIONS));
    const p = file(text);
    onlyConfigErrors(() => loadConfig(['--config', p, '--geoip-db', '/etc/hostname', '--region-map', '/etc/hostname']));
  }), { numRuns: 300 });
});

test('the shipped example loads, every key in it (set or commented out) is an option, and every option is in it', () => {
  const c = loadConfig(['--config', EXAMPLE]);
  assert.equal(c.realm, 'example.com');
  assert.equal(c.region, 'eu-west');
  assert.deepEqual(c.allowPeers.map((p) => p.text), ['10.20.0.0/16']);
  const text = readFileSync(EXAMPLE, 'utf8');
  const named = [...text.matchAll(/^#?([a-z][a-z0-9-]*):/gm)].map((m) => m[1] as string);
  const options = fileKeys(SERVE_OPTIONS);
  assert.deepEqual(named.filter((k) => !options.includes(k)), [], 'keys of the example that are no option');
  assert.deepEqual(options.filter((k) => !named.includes(k)), [], 'options the example does not show');
  // Each commented-out line, uncommented alone, is a valid setting in the file's own format.
  for (const m of text.matchAll(/^#([a-z][a-z0-9-]*):(.*)$/gm)) {
    if ((m[2] as string).trim() === '') continue; // a list follows on the next lines
    assert.ok(parseConfigText(`${m[1] as string}:${m[2] as string}\n`, EXAMPLE, SERVE_OPTIONS).has(m[1] as string), m[0]);
  }
});
