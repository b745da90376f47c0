// Which launches go through mirrord, and what happens when one fails.

import * as assert from 'assert';

import { OPEN_CONFIG, resolveLaunch, SESSION_KEY, sessionOf, skipReason, type Ui } from '../src/launch';
import type { DebugConfig, PrepareLaunchResult } from '../src/protocol';
import { MirrordService, type Rpc } from '../src/service';

/** An RPC peer that records requests and answers with `answer`. */
function fakeService(answer: (method: string, params: unknown) => Promise<unknown>) {
  const calls: { method: string; params: unknown }[] = [];
  const rpc: Rpc = {
    sendRequest: <R>(method: string, params?: unknown) => {
      calls.push({ method, params });
      return answer(method, params) as Promise<R>;
    },
  };
  return { service: new MirrordService(rpc), calls };
}

function fakeUi(choice?: string) {
  const seen = { errors: [] as string[], opened: 0, logsShown: 0, log: [] as string[] };
  const ui: Ui = {
    showError: async (message) => {
      seen.errors.push(message);
      return choice;
    },
    openConfig: async () => {
      seen.opened += 1;
    },
    showLogs: () => {
      seen.logsShown += 1;
    },
    log: (m) => seen.log.push(m),
  };
  return { ui, seen };
}

describe('skipReason', () => {
  const rows: [DebugConfig, boolean, string | undefined][] = [
    [{ type: 'debugpy', request: 'launch' }, true, undefined],
    [{ type: 'debugpy', request: 'launch' }, false, 'mirrord is off'],
    [{ type: 'debugpy', request: 'attach' }, true, 'attach requests run without mirrord'],
    [{ type: 'node', request: 'launch', __parentId: 'p1' }, true, 'a child configuration runs in its parent\'s session'],
    [{ type: 'node', request: 'launch', mirrord: false }, true, 'the configuration says "mirrord": false'],
    [{ type: 'node', request: 'launch', [SESSION_KEY]: 's1' }, true, 'already prepared'],
  ];
  for (const [config, enabled, expected] of rows) {
    it(`${JSON.stringify(config)} enabled=${enabled} -> ${expected ?? 'prepared'}`, () => {
      assert.strictEqual(skipReason(config, enabled), expected);
    });
  }
});

describe('resolveLaunch', () => {
  it('sends the configuration and folder, and remembers the session', async () => {
    const rewritten: PrepareLaunchResult = { configuration: { type: 'node', env: { A: '1' }, mirrord: false }, sessionId: 's7' };
    const { service, calls } = fakeService(async () => rewritten);
    const { ui } = fakeUi();
    const config = { type: 'node', request: 'launch', program: 'a.js' };
    const out = await resolveLaunch(service, ui, config, true, 'file:///w');
    assert.deepStrictEqual(calls, [{ method: 'mirrord/prepareLaunch', params: { configuration: config, workspaceFolder: 'file:///w' } }]);
    assert.deepStrictEqual(out, { type: 'node', env: { A: '1' }, mirrord: false, [SESSION_KEY]: 's7' });
    assert.strictEqual(sessionOf(out ?? {}), 's7');
  });

  it('leaves skipped configurations alone without asking the service', async () => {
    const { service, calls } = fakeService(async () => assert.fail('no request expected'));
    const { ui, seen } = fakeUi();
    const config = { type: 'debugpy', request: 'attach' };
    assert.strictEqual(await resolveLaunch(service, ui, config, true), config);
    assert.strictEqual(calls.length, 0);
    assert.match(seen.log[0], /attach requests/);
  });

  it('cancels the launch on an error and offers the config', async () => {
    const { service } = fakeService(async () => {
      throw new Error('the mirrord config is not valid: feature.fs: unknown variant "raed"');
    });
    const { ui, seen } = fakeUi(OPEN_CONFIG);
    const out = await resolveLaunch(service, ui, { type: 'node', request: 'launch' }, true);
    assert.strictEqual(out, undefined);
    assert.deepStrictEqual(seen.errors, ['mirrord: the mirrord config is not valid: feature.fs: unknown variant "raed"']);
    assert.strictEqual(seen.opened, 1);
    assert.strictEqual(seen.logsShown, 0);
  });

  it('returns a disabled configuration without a session', async () => {
    const { service } = fakeService(async () => ({ configuration: { type: 'node' }, sessionId: null }));
    const { ui } = fakeUi();
    assert.deepStrictEqual(await resolveLaunch(service, ui, { type: 'node', request: 'launch' }, true), { type: 'node' });
  });
});
