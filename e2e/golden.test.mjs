// The golden vectors in emitter/wire/testdata/golden.json must be what
// golden/generate.mjs produces with the installed @socket.io/redis-emitter: a stale
// file (generator edited, packages changed) fails here.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { spawnProcess } from './lib/proc.mjs';

test('golden vectors are up to date and deterministic', async (t) => {
  const p = spawnProcess(process.execPath, ['golden/generate.mjs', '--check'], {
    name: 'generate --check',
    cwd: new URL('.', import.meta.url).pathname,
    t,
  });
  const info = await p.exited;
  assert.equal(info.code, 0, `golden/generate.mjs --check failed:\n${p.tail()}`);
  assert.match(p.stdoutLines.join('\n'), /\d+ golden vectors up to date/);
});
