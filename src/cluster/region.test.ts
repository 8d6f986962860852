import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCountryMmdb } from '../../test/helpers/mmdb.ts';
import { P2pdError } from '../errors.ts';
import { loadRegionMap, normalizeIp, RegionResolver } from './region.ts';

test('a CIDR table places callers, longest prefix first; others get the node\'s region', () => {
  const r = new RegionResolver({
    defaultRegion: 'home',
    regionMap: { cidrs: { '10.0.0.0/8': 'eu', '10.1.0.0/16': 'us', 'fd00::/8': 'lab', '192.0.2.7': 'one' } },
  });
  assert.equal(r.resolve('10.2.3.4'), 'eu');
  assert.equal(r.resolve('10.1.3.4'), 'us');
  assert.equal(r.resolve('::ffff:10.1.3.4'), 'us', 'IPv4-mapped IPv6 as Node reports it');
  assert.equal(r.resolve('fd12::1'), 'lab');
  assert.equal(r.resolve('192.0.2.7'), 'one');
  assert.equal(r.resolve('192.0.2.8'), 'home');
  assert.equal(r.resolve('not an ip'), 'home');
  assert.equal(normalizeIp('::ffff:1.2.3.4'), '1.2.3.4');
});

test('GeoIP through the maxmind reader: country, then continent, then a region named like the code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-geo-'));
  try {
    const db = join(dir, 'country.mmdb');
    writeFileSync(db, buildCountryMmdb([
      { cidr: '198.51.100.0/24', country: 'DE', continent: 'EU' },
      { cidr: '203.0.113.0/24', country: 'FR', continent: 'EU' },
      { cidr: '192.0.2.0/24', country: 'US', continent: 'NA' },
      { cidr: '100.64.0.0/10', country: 'JP', continent: 'AS' },
    ]));
    const mapFile = join(dir, 'regions.json');
    writeFileSync(mapFile, JSON.stringify({ countries: { DE: 'eu-central' }, continents: { EU: 'eu-west' }, cidrs: { '100.64.0.0/16': 'cgnat' } }));
    const r = await RegionResolver.open({ defaultRegion: 'home', geoipDb: db, regionMap: loadRegionMap(mapFile) });
    assert.equal(r.resolve('198.51.100.9'), 'eu-central', 'country entry');
    assert.equal(r.resolve('203.0.113.9'), 'eu-west', 'continent entry');
    assert.equal(r.resolve('192.0.2.1'), 'home', 'no entry and no region named us or na');
    assert.equal(r.resolve('192.0.2.1', new Set(['na', 'eu-west'])), 'na', 'a cluster region named like the continent');
    assert.equal(r.resolve('100.64.1.1'), 'cgnat', 'the CIDR table wins over GeoIP');
    assert.equal(r.resolve('100.65.1.1', new Set(['jp'])), 'jp');
    assert.equal(r.resolve('8.8.8.8'), 'home', 'not in the database');
    assert.equal(r.resolve('2001:db8::1'), 'home', 'IPv6 not in the database');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses an unreadable GeoIP database or a malformed region map with CONFIG_INVALID_VALUE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'p2pd-geo-'));
  try {
    const bad = join(dir, 'bad.mmdb');
    writeFileSync(bad, 'not a database');
    await assert.rejects(RegionResolver.open({ defaultRegion: 'x', geoipDb: bad }), (e: unknown) => e instanceof P2pdError && e.code === 'CONFIG_INVALID_VALUE');
    const map = join(dir, 'map.json');
    writeFileSync(map, JSON.stringify({ cidrs: { '10.0.0.0/8': 5 } }));
    assert.throws(() => loadRegionMap(map), (e: unknown) => e instanceof P2pdError && e.code === 'CONFIG_INVALID_VALUE');
    writeFileSync(map, '{');
    assert.throws(() => loadRegionMap(map), (e: unknown) => e instanceof P2pdError && e.code.startsWith('CONFIG_'));
    assert.throws(() => new RegionResolver({ defaultRegion: 'x', regionMap: { cidrs: { '10.0.0.0/40': 'a' } } }), (e: unknown) => e instanceof P2pdError && e.code.startsWith('CONFIG_'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
