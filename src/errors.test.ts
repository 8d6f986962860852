import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  ERROR_CODES, P2pdError, codesOn, conflict, forbidden, isTurnError, rateLimited, streamCloseLabel, turnError,
  type ErrorCode, type Surface,
} from './errors.ts';

/** The rows of the first table after the heading `heading` (before the next heading), by column name. */
function tableAfter(file: string, heading: string): Record<string, string>[] {
  const lines = readFileSync(new URL(`../docs/${file}`, import.meta.url), 'utf8').split('\n');
  const at = lines.indexOf(heading);
  assert.ok(at >= 0, `docs/${file} has no heading ${JSON.stringify(heading)}`);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith('#')) break;
    if (line.startsWith('|')) rows.push(line.slice(1, line.endsWith('|') ? -1 : undefined).split('|').map((c) => c.trim()));
    else if (rows.length > 0) break;
  }
  assert.ok(rows.length > 2, `docs/${file} ${heading}: no table`);
  const [head, , ...body] = rows as [string[], string[], ...string[][]];
  return body.map((cells) => Object.fromEntries(head.map((name, i) => [name, cells[i] ?? ''])));
}

/** The codes (or labels) in one cell: `A`, `B` or a bare A; a dash is none. */
const namesIn = (cell: string): string[] => (cell.match(/`[^`]+`|[A-Z][A-Z0-9_]{2,}/g) ?? []).map((n) => n.replace(/`/g, ''));

/** Where each surface's codes are listed, and how a row names them. */
const TABLES: Record<Surface, { file: string; heading: string; column: string; name?: (code: ErrorCode) => string }> = {
  http: { file: 'client.md', heading: '## Errors of the HTTP API', column: 'code' },
  sdk: { file: 'client.md', heading: '### Error codes (`SdkError.code`, `src/sdk/errors.ts`)', column: 'code' },
  device: { file: 'client.md', heading: '### What the device sends in `error` messages', column: 'code' },
  mqtt: { file: 'signaling.md', heading: '### Errors', column: 'code' },
  turn: { file: 'turn.md', heading: '## Error codes', column: 'name' },
  stun: { file: 'turn.md', heading: '### Malformed messages', column: 'code' },
  stream: { file: 'turn.md', heading: '## Connection limits (TCP and TLS)', column: 'closed as', name: (c) => streamCloseLabel(c as Parameters<typeof streamCloseLabel>[0]) },
  cli: { file: 'deploy.md', heading: '## Command errors', column: 'code' },
};

describe('the error catalogue and the docs', () => {
  for (const [surface, t] of Object.entries(TABLES) as [Surface, (typeof TABLES)[Surface]][]) {
    test(`docs/${t.file} ${t.heading} lists exactly the ${surface} codes`, () => {
      const documented = tableAfter(t.file, t.heading).flatMap((row) => namesIn(row[t.column] ?? ''));
      const name = t.name ?? ((c: ErrorCode) => c);
      const existing = codesOn(surface).map(name);
      assert.deepEqual(existing.filter((c) => !documented.includes(c)), [], 'in src/errors.ts but not in the table');
      assert.deepEqual(documented.filter((c) => !existing.includes(c)), [], 'in the table but not in src/errors.ts');
      assert.equal(documented.length, new Set(documented).size, 'each code once');
    });
  }

  test('the HTTP table gives each code its status', () => {
    for (const row of tableAfter(TABLES.http.file, TABLES.http.heading)) {
      for (const code of namesIn(row.code ?? '')) assert.equal(Number(row.status), new P2pdError(code as ErrorCode, '').statusCode, code);
    }
  });

  test('the TURN table gives each code its STUN error code', () => {
    for (const row of tableAfter(TABLES.turn.file, TABLES.turn.heading)) {
      for (const code of namesIn(row.name ?? '')) assert.equal(Number(row.code), new P2pdError(code as ErrorCode, '').stunCode, code);
    }
  });

  test('every code shows somewhere, and has an HTTP status exactly when it shows over HTTP', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES) as [ErrorCode, (typeof ERROR_CODES)[ErrorCode]][]) {
      assert.ok(entry.on.length > 0, code);
      assert.match(code, /^[A-Z][A-Z0-9_]+$/);
      if ((entry.on as readonly Surface[]).includes('http')) assert.ok('http' in entry, code);
      if ((entry.on as readonly Surface[]).includes('turn')) assert.ok('stun' in entry, code);
    }
  });
});

describe('P2pdError', () => {
  test('takes its status from the catalogue and answers as {code, message}', () => {
    const e = forbidden('not yours');
    assert.ok(e instanceof P2pdError && e instanceof Error);
    assert.equal(e.name, 'P2pdError');
    assert.equal(e.statusCode, 403);
    assert.deepEqual(e.toJSON(), { code: 'FORBIDDEN', message: 'not yours' });
    assert.equal(conflict('x').statusCode, 500, 'a code that never reaches HTTP is a bug there');
    assert.equal(rateLimited('logins', 3).message, 'too many failed logins from this source: retry after 3 s');
    assert.equal(rateLimited('source', 2).message, 'too many requests for this source address: retry after 2 s');
  });

  test('a TURN refusal carries its STUN error code; other errors are not TURN refusals', () => {
    const e = turnError('ALLOCATION_QUOTA_REACHED', 'quota');
    assert.ok(isTurnError(e));
    assert.equal(e.stunCode, 486);
    assert.ok(!isTurnError(forbidden('x')));
    assert.ok(!isTurnError(new Error('x')));
  });
});
