// The config file "Open or Create Config" opens, and the commented template
// a new one is copied from (`templates/mirrord.json`, shipped in the VSIX).
// mirrord reads `.json` configs as JSON with comments and trailing commas.

import * as path from 'path';

export const CONFIG_PATH = path.join('.mirrord', 'mirrord.json');

export function configPath(workspaceFolder: string): string {
  return path.join(workspaceFolder, CONFIG_PATH);
}

/** Where the extension keeps its commented template of a new config. */
export function templatePath(extensionDir: string): string {
  return path.join(extensionDir, 'templates', 'mirrord.json');
}
