// Which mirrord binary the extension starts: the setting, else the one
// bundled with the extension, else `mirrord` on PATH.

import * as path from 'path';

export function findBinary(
  setting: string | undefined,
  extensionDir: string,
  exists: (file: string) => boolean,
): string {
  if (setting !== undefined && setting.trim() !== '') return setting.trim();
  const bundled = path.join(extensionDir, 'bin', 'mirrord');
  return exists(bundled) ? bundled : 'mirrord';
}
