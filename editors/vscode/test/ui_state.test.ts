// The target picker's memory, the toggle, the binary lookup, the config
// template and the sessions view.

import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { BinaryNotFound, bundledBinary, findBinary, isExecutable, type SettingsSource } from '../src/binary';
import { templatePath } from '../src/config_file';
import { describeSession } from '../src/sessions_view';
import { LAST_TARGET_KEY, pickTarget, type Memento, type PickItem } from '../src/targets';
import { Toggle } from '../src/toggle';

class MapMemento implements Memento {
  readonly values = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }
  async update(key: string, value: unknown): Promise<void> {
    this.values.set(key, value);
  }
}

const LIST = {
  targets: [
    { path: 'targetless', description: 'no target' },
    { path: 'pid/10', description: 'api' },
    { path: 'pid/20', description: 'worker' },
  ],
};

describe('pickTarget', () => {
  it('offers the last choice first and remembers the new one', async () => {
    const memento = new MapMemento();
    memento.values.set(LAST_TARGET_KEY, 'pid/20');
    let offered: PickItem[] = [];
    const answer = await pickTarget(LIST, async (items) => {
      offered = items;
      return items[2];
    }, memento);
    assert.deepStrictEqual(offered.map((i) => i.label), ['pid/20', 'targetless', 'pid/10']);
    assert.match(offered[0].description, /^last used/);
    assert.deepStrictEqual(answer, { target: 'pid/10' });
    assert.strictEqual(memento.get(LAST_TARGET_KEY), 'pid/10');
  });

  it('answers null when dismissed and keeps the old choice', async () => {
    const memento = new MapMemento();
    memento.values.set(LAST_TARGET_KEY, 'pid/10');
    assert.deepStrictEqual(await pickTarget(LIST, async () => undefined, memento), { target: null });
    assert.strictEqual(memento.get(LAST_TARGET_KEY), 'pid/10');
  });
});

describe('Toggle', () => {
  it('is off by default and flips per workspace state', async () => {
    const memento = new MapMemento();
    const toggle = new Toggle(memento);
    assert.strictEqual(toggle.enabled, false);
    assert.match(toggle.label.text, /off/);
    assert.strictEqual(await toggle.flip(), true);
    assert.strictEqual(new Toggle(memento).enabled, true);
    assert.match(toggle.label.text, /on/);
  });
});

describe('findBinary', () => {
  // A fake `vscode.workspace` that serves `mirrord.binaryPath` and records what was read.
  const settings = (binaryPath: string | undefined, read: string[] = []): SettingsSource => ({
    getConfiguration: (section: string) => ({
      get: <T>(key: string) => {
        read.push(`${section}.${key}`);
        return binaryPath as T | undefined;
      },
    }),
  });
  const executables = (...files: string[]) => (file: string) => files.includes(file);
  const lookup = (binaryPath: string | undefined, files: string[], read?: string[]) => ({
    workspace: settings(binaryPath, read),
    extensionDir: '/ext',
    pathEnv: '/usr/local/bin:/usr/bin',
    isExecutable: executables(...files),
  });

  it('prefers the setting, then the bundled binary, then PATH', () => {
    const read: string[] = [];
    const all = ['/opt/mirrord', '/ext/bin/mirrord', '/usr/bin/mirrord'];
    assert.strictEqual(findBinary(lookup(' /opt/mirrord ', all, read)), '/opt/mirrord');
    assert.deepStrictEqual(read, ['mirrord.binaryPath']);
    assert.strictEqual(findBinary(lookup('', all)), '/ext/bin/mirrord');
    assert.strictEqual(findBinary(lookup(undefined, ['/usr/bin/mirrord'])), '/usr/bin/mirrord');
    assert.strictEqual(bundledBinary('/ext'), '/ext/bin/mirrord');
  });

  it('looks a bare setting up on PATH, first directory first', () => {
    const files = ['/usr/bin/mirrord-dev', '/usr/local/bin/mirrord-dev', '/ext/bin/mirrord'];
    assert.strictEqual(findBinary(lookup('mirrord-dev', files)), '/usr/local/bin/mirrord-dev');
  });

  it('says what to change when nothing can run', () => {
    assert.throws(() => findBinary(lookup('/opt/missing', ['/ext/bin/mirrord'])), (e: Error) =>
      e instanceof BinaryNotFound && e.message.includes('"/opt/missing"') && e.message.includes('clear it'));
    assert.throws(() => findBinary(lookup(undefined, [])), (e: Error) =>
      e instanceof BinaryNotFound && e.message.includes('mirrord.binaryPath'));
  });

  it('checks files for real: executable regular files only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mirrord-bin-'));
    try {
      const script = path.join(dir, 'mirrord');
      fs.writeFileSync(script, '#!/bin/sh\n', { mode: 0o644 });
      assert.strictEqual(isExecutable(script), false);
      fs.chmodSync(script, 0o755);
      assert.strictEqual(isExecutable(script), true);
      assert.strictEqual(isExecutable(dir), false);
      assert.strictEqual(findBinary({ ...lookup(undefined, []), pathEnv: dir, isExecutable }), script);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config template', () => {
  // `tests/tests/ide.rs` checks that `mirrord verify-config` accepts it.
  it('is the commented file shipped beside the extension', () => {
    const extensionDir = path.join(__dirname, '..', '..');
    const text = fs.readFileSync(templatePath(extensionDir), 'utf8');
    assert.match(text, /^\/\/ /);
    assert.match(text, /"target": "targetless"/);
    assert.throws(() => JSON.parse(text), SyntaxError);
  });
});

describe('describeSession', () => {
  it('names target, state, id, intproxy and age', () => {
    const shown = describeSession({ sessionId: 's1', target: 'pid/7', pid: 99, since: 1_000, state: 'running' }, 91_000);
    assert.deepStrictEqual(shown, { label: 'pid/7 (running)', description: 'session s1 · intproxy 99 · started 2 min ago' });
  });
});
