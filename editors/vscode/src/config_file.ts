// The config file "Open or Create Config" opens, and the commented template
// a new one is copied from (`templates/mirrord.json`, shipped in the VSIX).
// mirrord reads `.json` configs as JSON with comments and trailing commas.

import * as path from 'path';

export const CONFIG_PATH = path.join('.mirrord', 'mirrord.json');

export function configPath(workspaceFolder: string): string {
  return path.join(workspaceFolder, CONFIG_PATH);
}

/**
 * The documents the language client hands to `mirrord ide`: the config
 * files in every format the service reads (`adapter/src/ide/documents.rs`)
 * and `launch.json`. `test/service.test.ts` checks both agree.
 */
export const CONFIG_DOCUMENT_PATTERNS = [
  '**/mirrord.{json,toml,yaml,yml}',
  '**/*.mirrord.{json,toml,yaml,yml}',
  '**/.mirrord/*.{json,toml,yaml,yml}',
  '**/.vscode/launch.json',
];

/** Where the extension keeps its commented template of a new config. */
export function templatePath(extensionDir: string): string {
  return path.join(extensionDir, 'templates', 'mirrord.json');
}
