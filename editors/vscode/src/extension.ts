// The VS Code glue: the only module that imports `vscode`. It wires the
// logic modules (tested without VS Code) to the editor: the language
// client running `mirrord ide`, the status-bar toggle, the debug
// configuration provider, the target picker and the commands.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';

import { BinaryNotFound, findBinary, isExecutable } from './binary';
import { CONFIG_DOCUMENT_PATTERNS, configPath, templatePath } from './config_file';
import { resolveLaunch, sessionOf, type Ui } from './launch';
import { PICK_TARGET, PROGRESS, SESSION_ENDED, type ProgressParams, type SessionEndedParams, type TargetList } from './protocol';
import { MirrordService } from './service';
import { describeSession } from './sessions_view';
import { LAST_TARGET_KEY, pickItems, pickTarget } from './targets';
import { Toggle } from './toggle';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('mirrord');
  let binary: string;
  try {
    binary = findBinary({ workspace: vscode.workspace, extensionDir: context.extensionPath, pathEnv: process.env.PATH, isExecutable });
  } catch (e) {
    const message = e instanceof BinaryNotFound ? e.message : String(e);
    output.appendLine(message);
    void vscode.window.showErrorMessage(`mirrord: ${message}`, 'Open Settings').then(async (choice) => {
      if (choice !== undefined) await vscode.commands.executeCommand('workbench.action.openSettings', 'mirrord.binaryPath');
    });
    return;
  }
  const serverOptions: ServerOptions = { command: binary, args: ['ide'], transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: CONFIG_DOCUMENT_PATTERNS.map((pattern) => ({ scheme: 'file', pattern })),
    outputChannel: output,
  };
  const languageClient = new LanguageClient('mirrord', 'mirrord', serverOptions, clientOptions);
  client = languageClient;
  const service = new MirrordService(languageClient);
  const toggle = new Toggle(context.workspaceState);
  const quickPick = async (items: { label: string; description: string }[], placeHolder: string) =>
    vscode.window.showQuickPick(items, { placeHolder });

  languageClient.onRequest(PICK_TARGET, (params: TargetList) => pickTarget(params, quickPick, context.workspaceState));
  const progress = new Map<string, (p: ProgressParams) => void>();
  languageClient.onNotification(PROGRESS, (p: ProgressParams) => {
    let report = progress.get(p.id);
    if (report === undefined) {
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'mirrord' },
        (bar) => new Promise<void>((done) => {
          report = (next) => {
            bar.report({ message: next.message });
            if (next.done) {
              progress.delete(next.id);
              done();
            }
          };
          progress.set(p.id, report);
          report(p);
        }),
      );
      return;
    }
    report(p);
  });
  languageClient.onNotification(SESSION_ENDED, (p: SessionEndedParams) =>
    output.appendLine(`session ${p.sessionId} ended: ${p.reason}`));
  await languageClient.start();

  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  status.command = 'mirrord.toggle';
  const showToggle = () => {
    status.text = toggle.label.text;
    status.tooltip = toggle.label.tooltip;
    status.show();
  };
  showToggle();

  const firstFolder = () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const openConfig = async () => {
    const folder = firstFolder();
    if (folder === undefined) {
      void vscode.window.showErrorMessage('mirrord: open a folder first; the config lives in its .mirrord directory');
      return;
    }
    const file = configPath(folder);
    if (!fs.existsSync(file)) {
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      await fs.promises.copyFile(templatePath(context.extensionPath), file);
    }
    await vscode.window.showTextDocument(vscode.Uri.file(file));
  };
  const ui: Ui = {
    showError: async (message, ...actions) => vscode.window.showErrorMessage(message, ...actions),
    openConfig,
    showLogs: () => output.show(),
    log: (message) => output.appendLine(message),
  };

  context.subscriptions.push(
    output,
    status,
    vscode.commands.registerCommand('mirrord.toggle', async () => {
      await toggle.flip();
      showToggle();
    }),
    vscode.commands.registerCommand('mirrord.selectTarget', async () => {
      const list = await service.listTargets();
      const last = context.workspaceState.get<string>(LAST_TARGET_KEY);
      const picked = await quickPick(pickItems(list, last), 'mirrord: the target for the next launches');
      if (picked !== undefined) await context.workspaceState.update(LAST_TARGET_KEY, picked.label);
    }),
    vscode.commands.registerCommand('mirrord.openConfig', openConfig),
    vscode.commands.registerCommand('mirrord.showSessions', async () => {
      const { sessions } = await service.sessions();
      const now = Date.now();
      await vscode.window.showQuickPick(sessions.map((s) => describeSession(s, now)), {
        placeHolder: sessions.length === 0 ? 'no mirrord sessions yet' : 'mirrord sessions',
      });
    }),
    vscode.debug.registerDebugConfigurationProvider('*', {
      resolveDebugConfigurationWithSubstitutedVariables: async (folder, config) =>
        (await resolveLaunch(service, ui, config, toggle.enabled, folder?.uri.toString())) as
          vscode.DebugConfiguration | undefined,
    }),
    vscode.debug.onDidTerminateDebugSession((session) => {
      const id = sessionOf(session.configuration);
      if (id !== undefined) {
        service.endSession(id).catch((e: unknown) => output.appendLine(`ending session ${id}: ${String(e)}`));
      }
    }),
  );
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
