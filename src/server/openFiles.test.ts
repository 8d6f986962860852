import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultMaxConnections, openFileLimit } from './openFiles.ts';

const LIMITS = (soft: string, hard: string): string => [
  'Limit                     Soft Limit           Hard Limit           Units     ',
  'Max cpu time              unlimited            unlimited            seconds   ',
  `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
  'Max processes             94127                94127                processes ',
].join('\n');

describe('open-file limit', () => {
  it('reads the soft limit of /proc/self/limits', () => {
    assert.equal(openFileLimit(LIMITS('20000', '40000')), 20000);
    assert.equal(openFileLimit(LIMITS('unlimited', 'unlimited')), undefined);
    assert.equal(openFileLimit(''), undefined);
  });

  it("reads this process's own on Linux", () => {
    if (process.platform !== 'linux') return;
    const limit = openFileLimit();
    assert.ok(limit !== undefined && limit > 0, String(limit));
  });

  it('keeps an eighth of the limit, at least 256 files, for all but MQTT connections', () => {
    assert.equal(defaultMaxConnections(20000), 17500);
    assert.equal(defaultMaxConnections(1024), 768);
    assert.equal(defaultMaxConnections(1_048_576), 917_504);
    assert.equal(defaultMaxConnections(100), 1, 'a tiny limit still takes one client');
    assert.equal(defaultMaxConnections(undefined), 0, 'unknown: unbounded');
  });
});
