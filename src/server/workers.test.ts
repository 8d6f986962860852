import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WORKER_SEMI_SPACE_MIB, workerExecArgv } from './workers.ts';

test('workers run with a small young generation unless the operator sized it', () => {
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], undefined), ['--enable-source-maps', `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`]);
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=32'], ''), ['--max-semi-space-size=32'], 'given on the command line');
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=4096 --max_semi_space_size=16'), [], 'given in NODE_OPTIONS');
});
