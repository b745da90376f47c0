// Packaging step: copies the mirrord binaries the VSIX carries into bin/
// (the extension finds bin/mirrord; mirrord finds its layer and agent
// beside itself), stripped of debug info. Taken from the directory of
// MIRRORD_BIN, else the workspace's target/debug. When mirrord is not
// built, bin/ is emptied and the VSIX carries no binary (PATH is used).

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const FILES = ['mirrord', 'libmirrord_layer.so', 'mirrord-agent'];
const here = path.dirname(new URL(import.meta.url).pathname);
const bin = path.join(here, '..', 'bin');
const source = process.env.MIRRORD_BIN
  ? path.dirname(path.resolve(process.env.MIRRORD_BIN))
  : path.resolve(here, '..', '..', '..', 'target', 'debug');

fs.rmSync(bin, { recursive: true, force: true });
if (!fs.existsSync(path.join(source, 'mirrord'))) {
  console.log(`bundle: no mirrord in ${source}; the VSIX carries no binary`);
  process.exit(0);
}
fs.mkdirSync(bin, { recursive: true });
for (const name of FILES) {
  const from = path.join(source, name);
  const to = path.join(bin, name);
  if (!fs.existsSync(from)) {
    console.error(`bundle: ${from} is missing: build the workspace (cargo build --workspace)`);
    process.exit(1);
  }
  const strip = spawnSync('strip', [name.endsWith('.so') ? '--strip-unneeded' : '--strip-all', '-o', to, from], { stdio: 'inherit' });
  if (strip.error !== undefined || strip.status !== 0) fs.copyFileSync(from, to);
  fs.chmodSync(to, 0o755);
  console.log(`bundle: ${to} (${fs.statSync(to).size} bytes)`);
}
