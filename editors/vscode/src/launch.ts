// Whether a debug launch goes through mirrord, and rewriting it through
// `mirrord/prepareLaunch`. No `vscode` here: the extension passes in what
// it needs.

import type { DebugConfig } from './protocol';
import type { MirrordService } from './service';

/** Where the extension keeps the mirrord session id of a prepared launch. */
export const SESSION_KEY = '__mirrordSessionId';

/** Why a configuration is left alone, or `undefined` when it goes through mirrord. */
export function skipReason(config: DebugConfig, enabled: boolean): string | undefined {
  if (!enabled) return 'mirrord is off';
  if (config.request === 'attach') return 'attach requests run without mirrord';
  if ('__parentId' in config) return 'a child configuration runs in its parent\'s session';
  if (config.mirrord === false) return 'the configuration says "mirrord": false';
  if (SESSION_KEY in config) return 'already prepared';
  return undefined;
}

/** What the extension shows when a launch could not be prepared. */
export interface Ui {
  /** Shows an error with actions; resolves with the one chosen. */
  showError(message: string, ...actions: string[]): Promise<string | undefined>;
  openConfig(): Promise<void>;
  showLogs(): void;
  log(message: string): void;
}

export const OPEN_CONFIG = 'Open config';
export const SHOW_LOGS = 'Show logs';

/**
 * The configuration to launch: unchanged when skipped, rewritten by the
 * service otherwise, `undefined` (the launch is cancelled) on an error.
 */
export async function resolveLaunch(
  service: MirrordService,
  ui: Ui,
  config: DebugConfig,
  enabled: boolean,
  workspaceFolder?: string,
): Promise<DebugConfig | undefined> {
  const name = typeof config.name === 'string' ? config.name : '';
  const reason = skipReason(config, enabled);
  if (reason !== undefined) {
    ui.log(`launch "${name}": ${reason}`);
    return config;
  }
  try {
    const prepared = await service.prepareLaunch(config, workspaceFolder);
    if (prepared.sessionId === null) return prepared.configuration;
    return { ...prepared.configuration, [SESSION_KEY]: prepared.sessionId };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    ui.log(`launch "${name}" failed: ${message}`);
    const choice = await ui.showError(`mirrord: ${message}`, OPEN_CONFIG, SHOW_LOGS);
    if (choice === OPEN_CONFIG) await ui.openConfig();
    if (choice === SHOW_LOGS) ui.showLogs();
    return undefined;
  }
}

/** The mirrord session of a debug session's configuration, if it has one. */
export function sessionOf(config: DebugConfig): string | undefined {
  const id = config[SESSION_KEY];
  return typeof id === 'string' ? id : undefined;
}
