// The extension's client code against the real `mirrord ide` binary
// (MIRRORD_BIN, else the workspace's target/debug/mirrord), over a plain
// JSON-RPC connection instead of VS Code's language client.

import * as assert from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';

import { minimatch } from 'minimatch';

import { CONFIG_DOCUMENT_PATTERNS } from '../src/config_file';
import { resolveLaunch, sessionOf, type Ui } from '../src/launch';
import { PICK_TARGET, SESSION_ENDED, type SessionEndedParams, type TargetList } from '../src/protocol';
import { MirrordService } from '../src/service';
import { pickTarget, type Memento } from '../src/targets';

const BINARY = process.env.MIRRORD_BIN ?? path.resolve(__dirname, '../../../../target/debug/mirrord');

const memory = new Map<string, unknown>();
const memento: Memento = {
  get: <T>(key: string) => memory.get(key) as T | undefined,
  update: async (key: string, value: unknown) => {
    memory.set(key, value);
  },
};

const ui: Ui = {
  showError: async (message) => assert.fail(`unexpected error: ${message}`),
  openConfig: async () => undefined,
  showLogs: () => undefined,
  log: () => undefined,
};

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

describe('the extension against mirrord ide', function () {
  this.timeout(60_000);
  let service: ChildProcess;
  let connection: ProtocolConnection;
  const ended: SessionEndedParams[] = [];
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'mirrord-vscode-'));

  before(async function () {
    if (!fs.existsSync(BINARY)) {
      throw new Error(`build mirrord first (cargo build --workspace), or set MIRRORD_BIN; not found: ${BINARY}`);
    }
    service = spawn(BINARY, ['ide', '--stdio'], { cwd: workspace, stdio: ['pipe', 'pipe', 'inherit'] });
    connection = createProtocolConnection(
      new StreamMessageReader(service.stdout!),
      new StreamMessageWriter(service.stdin!),
    );
    // The picker answers with the first target offered (targetless), as a user would pick it.
    connection.onRequest(PICK_TARGET, (list: TargetList) =>
      pickTarget(list, async (items) => items.find((i) => i.label === 'targetless'), memento));
    connection.onNotification(SESSION_ENDED, (p: SessionEndedParams) => {
      ended.push(p);
    });
    connection.listen();
    await connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
    void connection.sendNotification('initialized', {});
  });

  after(() => {
    fs.rmSync(workspace, { recursive: true, force: true });
  });

  it('checks every document the client selects, and the client selects every config the service reads', async () => {
    const selected = (file: string) => CONFIG_DOCUMENT_PATTERNS.some((p) => minimatch(file, p, { dot: true }));
    const claimed = ['mirrord.json', 'mirrord.toml', 'api.mirrord.yml', '.mirrord/staging.yaml', 'sub/.mirrord/x.json'];
    for (const name of ['package.json', '.mirrord/notes.txt', 'launch.json', 'mirrord.ini']) {
      assert.strictEqual(selected(path.join(workspace, name)), false, name);
    }
    const published = new Map<string, { message: string }[]>();
    connection.onNotification('textDocument/publishDiagnostics', (p: { uri: string; diagnostics: { message: string }[] }) => {
      published.set(p.uri, p.diagnostics);
    });
    const texts: Record<string, string> = { json: '{"agnet": {}}', toml: '[agnet]\n', yml: 'agnet: {}\n', yaml: 'agnet: {}\n' };
    for (const name of claimed) {
      const file = path.join(workspace, name);
      assert.ok(selected(file), `the client does not select ${name}`);
      const uri = `file://${file}`;
      await connection.sendNotification('textDocument/didOpen', {
        textDocument: { uri, languageId: 'plaintext', version: 1, text: texts[path.extname(name).slice(1)] },
      });
      const deadline = Date.now() + 10_000;
      while (!published.has(uri) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const diagnostics = published.get(uri) ?? [];
      assert.ok(diagnostics.some((d) => d.message.includes('agnet')), `no diagnostic for ${name}: ${JSON.stringify(diagnostics)}`);
    }
  });

  it('prepares a launch, with the target picked in the editor, and ends its session', async () => {
    const mirrord = new MirrordService(connection);
    const config = { type: 'node', request: 'launch', name: 'app', program: 'app.js', env: { MINE: 'kept' } };
    const out = await resolveLaunch(mirrord, ui, config, true, `file://${workspace}`);
    assert.ok(out !== undefined);
    const env = out.env as Record<string, string>;
    assert.strictEqual(env.MINE, 'kept');
    assert.match(env.LD_PRELOAD, /libmirrord_layer\.so/);
    assert.strictEqual(memory.get('mirrord.lastTarget'), 'targetless');
    const id = sessionOf(out);
    assert.ok(id !== undefined);
    const { sessions } = await mirrord.sessions();
    const running = sessions.find((s) => s.sessionId === id);
    assert.ok(running !== undefined && running.state === 'running' && running.target === 'targetless');
    assert.ok(alive(running.pid));
    await mirrord.endSession(id);
    assert.ok(!alive(running.pid), `intproxy ${running.pid} still runs`);
    // The notification travels apart from the response: wait for it.
    for (let i = 0; i < 100 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepStrictEqual(ended, [{ sessionId: id, reason: 'requested' }]);
  });

  it('leaves nothing when the editor goes away', async () => {
    const mirrord = new MirrordService(connection);
    const out = await resolveLaunch(mirrord, ui, { type: 'debugpy', request: 'launch', mirrord: { target: 'targetless' } }, true);
    const id = sessionOf(out ?? {});
    const { sessions } = await mirrord.sessions();
    const pid = sessions.find((s) => s.sessionId === id)?.pid ?? 0;
    assert.ok(alive(pid));
    const exited = new Promise<number | null>((resolve) => service.on('exit', (code) => resolve(code)));
    connection.dispose();
    service.stdin!.end();
    assert.strictEqual(await exited, 0);
    assert.ok(!alive(pid), `intproxy ${pid} still runs`);
  });
});
