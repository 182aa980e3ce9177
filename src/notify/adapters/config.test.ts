import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { systemClock } from '../../core/clock.js';
import { ErrorCode, isHealError } from '../../core/errors.js';
import { loadConfig } from '../../config/load.js';
import { silentLogger } from '../../engine/logger.js';
import { createMetrics } from '../../metrics/metrics.js';
import { backoffMs, retryAfterMs } from './http.js';
import { createTicketDispatcherFromConfig } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'aegis-adapters-config-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const deps = {
  clock: systemClock,
  metrics: createMetrics(),
  log: silentLogger,
  writeBack: () => Promise.resolve(),
};

describe('notify.adapters config', () => {
  it('is off by default: no dispatcher, and every existing config still loads', () => {
    const c = loadConfig({});
    assert.equal(c.notify.adapters.webhook, undefined);
    assert.equal(c.notify.adapters.jira, undefined);
    assert.equal(c.notify.adapters.servicenow, undefined);
    assert.equal(createTicketDispatcherFromConfig(c, deps), undefined);
    assert.equal(
      loadConfig({ file: 'deploy/aegis/controller-config.yaml' }).notify.adapters.queueSize,
      1000,
    );
  });

  it('a block present is on, with its defaults; enabled: false turns it off', () => {
    const key = file('hmac', 'k\n');
    const c = loadConfig({
      file: file(
        'on.yaml',
        `notify:\n  adapters:\n    webhook:\n      url: https://hooks.example/aegis\n      hmacKeyFile: ${key}\n`,
      ),
    });
    assert.deepEqual(c.notify.adapters.webhook?.events, ['opened', 'step', 'handoff', 'closed']);
    assert.equal(c.notify.adapters.maxBackoffMs, 300_000);
    assert.notEqual(createTicketDispatcherFromConfig(c, deps), undefined);
    const off = loadConfig({
      file: file(
        'off.yaml',
        `notify:\n  adapters:\n    webhook:\n      enabled: false\n      url: https://hooks.example/aegis\n      hmacKeyFile: ${key}\n`,
      ),
    });
    assert.equal(createTicketDispatcherFromConfig(off, deps), undefined);
  });

  const bad: [string, string, RegExp][] = [
    [
      'an inline secret is not a key',
      'jira:\n      baseUrl: https://x.atlassian.net\n      email: a@b\n      apiToken: s3cret\n      apiTokenFile: /t\n      projectKey: OPS\n',
      /apiToken/,
    ],
    [
      'Jira over http:// (the token in clear)',
      'jira:\n      baseUrl: http://jira.example\n      email: a@b\n      apiTokenFile: /t\n      projectKey: OPS\n',
      /in clear[^]*at notify\.adapters\.jira\.baseUrl/,
    ],
    [
      'ServiceNow with two kinds of auth',
      'servicenow:\n      instanceUrl: https://x.service-now.com\n      username: u\n      passwordFile: /p\n      tokenFile: /t\n',
      /exactly one of[^]*at notify\.adapters\.servicenow/,
    ],
    [
      'ServiceNow with no auth',
      'servicenow:\n      instanceUrl: https://x.service-now.com\n',
      /exactly one of/,
    ],
    [
      'ServiceNow basic auth without the password file',
      'servicenow:\n      instanceUrl: https://x.service-now.com\n      username: u\n',
      /both username and passwordFile/,
    ],
    [
      'a webhook URL that is not http(s)',
      'webhook:\n      url: ftp://x\n      hmacKeyFile: /k\n',
      /http[^]*at notify\.adapters\.webhook\.url/,
    ],
    [
      'a Jira project key in lower case',
      'jira:\n      baseUrl: https://x.atlassian.net\n      email: a@b\n      apiTokenFile: /t\n      projectKey: ops\n',
      /project key[^]*at notify\.adapters\.jira\.projectKey/,
    ],
    [
      'an unknown event',
      'webhook:\n      url: https://x\n      hmacKeyFile: /k\n      events: [paged]\n',
      /events/,
    ],
  ];
  for (const [name, block, want] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () =>
          loadConfig({
            file: file(`${name.replace(/\W+/g, '-')}.yaml`, `notify:\n  adapters:\n    ${block}`),
          }),
        (err) => isHealError(err, ErrorCode.ConfigInvalid) && want.test(err.message),
      );
    });
  }

  it('a missing or empty secret file stops start-up, naming the key and the file', () => {
    const missing = join(dir, 'no-such-token');
    const c = loadConfig({
      file: file(
        'missing.yaml',
        `notify:\n  adapters:\n    jira:\n      baseUrl: https://x.atlassian.net\n      email: a@b\n      apiTokenFile: ${missing}\n      projectKey: OPS\n`,
      ),
    });
    assert.throws(
      () => createTicketDispatcherFromConfig(c, deps),
      (err) =>
        isHealError(err, ErrorCode.ConfigInvalid) &&
        err.message.includes('notify.adapters.jira.apiTokenFile') &&
        err.message.includes(missing),
    );
    const empty = file('empty-token', '\n');
    const c2 = loadConfig({
      file: file(
        'empty.yaml',
        `notify:\n  adapters:\n    servicenow:\n      instanceUrl: https://x.service-now.com\n      tokenFile: ${empty}\n`,
      ),
    });
    assert.throws(
      () => createTicketDispatcherFromConfig(c2, deps),
      (err) =>
        isHealError(err, ErrorCode.ConfigInvalid) && /tokenFile: .* is empty/.test(err.message),
    );
  });
});

describe('retry timing', () => {
  const policy = {
    maxAttempts: 8,
    initialBackoffMs: 1000,
    maxBackoffMs: 300_000,
    timeoutMs: 10_000,
  };
  it('backoff doubles from the initial delay up to the cap, with at most 20 % jitter', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 9, 10, 20].map((n) => backoffMs(policy, n, () => 0)),
      [1000, 2000, 4000, 8000, 256_000, 300_000, 300_000],
    );
    assert.equal(
      backoffMs(policy, 1, () => 0.999),
      1200,
    );
  });
  it('Retry-After in seconds or as an HTTP date; nonsense ignored; at most an hour', () => {
    const now = Date.UTC(2026, 4, 4, 10, 0, 0);
    assert.equal(retryAfterMs('120', now), 120_000);
    assert.equal(retryAfterMs(new Date(now + 30_000).toUTCString(), now), 30_000);
    assert.equal(retryAfterMs(new Date(now - 30_000).toUTCString(), now), 0);
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
    assert.equal(retryAfterMs('86400', now), 3_600_000);
  });
});
