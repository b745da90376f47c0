// The config file "Open or Create Config" opens, and what a new one holds.
// mirrord reads its config as strict JSON (no comments): the template's
// explanations are the schema's, shown by hover and completion.

import * as path from 'path';

export const CONFIG_PATH = path.join('.mirrord', 'mirrord.json');

export function configPath(workspaceFolder: string): string {
  return path.join(workspaceFolder, CONFIG_PATH);
}

/** A new config: targetless, files read from the target, env and network on. */
export const TEMPLATE = `${JSON.stringify(
  {
    target: 'targetless',
    feature: {
      fs: { mode: 'read', local: [] },
      env: true,
      network: { outgoing: true, dns: true },
    },
  },
  null,
  2,
)}\n`;
