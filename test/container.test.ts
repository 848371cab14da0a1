/** The container image's runtime stage without Docker (scripts/container-check.ts): clean production install, unprivileged, SIGTERM. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerCheck } from '../scripts/container-check.js';

describe('container-equivalent run', () => {
  it('a production-only install in an empty folder serves an adapter and a completion as an unprivileged user and stops cleanly on SIGTERM', { timeout: 240_000 }, async () => {
    const report = await containerCheck();
    if (process.getuid?.() === 0) assert.equal(report.uid, 65534, 'runs as nobody');
    assert.notEqual(report.uid, 0);
    assert.match(report.adapter, /^ad-[0-9a-f]{32}$/);
    assert.equal(typeof report.completion, 'string');
    assert.equal(report.exitCode, 0);
  });
});
