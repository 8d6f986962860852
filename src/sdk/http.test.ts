import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { preconnect, requestJson } from './http.ts';

test('preconnect opens the connection the next request uses, and resolves when nothing answers', async () => {
  let connections = 0;
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ status: 'ok' }));
  });
  server.on('connection', () => { connections++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await preconnect(url);
    assert.equal(connections, 1);
    // fetch puts a connection back in its pool on a later turn than the one that read the answer
    // (a request in the same turn opens another); a connect() comes long after the preconnect.
    await new Promise((r) => setTimeout(r, 10));
    await requestJson('GET', `${url}/v1/ice-servers`, { timeoutMs: 5000 });
    assert.equal(connections, 1, 'the request went over the preconnected connection');
    assert.deepEqual(paths, ['GET /healthz', 'GET /v1/ice-servers']);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
  await preconnect(url, 1000);
});
