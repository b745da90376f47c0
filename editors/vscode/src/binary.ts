// Which mirrord binary the extension starts: the `mirrord.binaryPath`
// setting, else the one bundled in the VSIX (`bin/mirrord`, put there by
// `scripts/bundle.mjs` when packaging), else `mirrord` on PATH. The
// `vscode` workspace API is a parameter, so mocha tests this without VS Code.

import * as fs from 'fs';
import * as path from 'path';

/** The part of `vscode.workspace` the lookup reads. */
export interface SettingsSource {
  getConfiguration(section: string): { get<T>(key: string): T | undefined };
}

export interface BinaryLookup {
  workspace: SettingsSource;
  extensionDir: string;
  /** `process.env.PATH`. */
  pathEnv: string | undefined;
  isExecutable: (file: string) => boolean;
}

/** No usable binary; the message says what to change. */
export class BinaryNotFound extends Error {}

export function bundledBinary(extensionDir: string): string {
  return path.join(extensionDir, 'bin', 'mirrord');
}

function onPath(name: string, pathEnv: string | undefined, isExecutable: (file: string) => boolean): string | undefined {
  return (pathEnv ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => path.join(dir, name))
    .find(isExecutable);
}

export function findBinary(lookup: BinaryLookup): string {
  const setting = lookup.workspace.getConfiguration('mirrord').get<string>('binaryPath')?.trim() ?? '';
  if (setting !== '') {
    // A bare name is looked up on PATH, as a shell would.
    const found = setting.includes(path.sep) ? (lookup.isExecutable(setting) ? setting : undefined) : onPath(setting, lookup.pathEnv, lookup.isExecutable);
    if (found === undefined) {
      throw new BinaryNotFound(
        `the setting mirrord.binaryPath is "${setting}", which is not an executable file: correct it, or clear it to use the bundled mirrord or the one on PATH`,
      );
    }
    return found;
  }
  const bundled = bundledBinary(lookup.extensionDir);
  if (lookup.isExecutable(bundled)) return bundled;
  const fromPath = onPath('mirrord', lookup.pathEnv, lookup.isExecutable);
  if (fromPath !== undefined) return fromPath;
  throw new BinaryNotFound(
    'no mirrord binary: this extension bundles none and there is no mirrord on PATH; install mirrord or set mirrord.binaryPath',
  );
}

/** A regular file this process may execute. */
export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
