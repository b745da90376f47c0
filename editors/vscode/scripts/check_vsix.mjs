// Packaging check: reads the VSIX's zip central directory and fails unless
// it holds the config template, the schema and every file of bin/ (same
// size, executable). With --require-bin (the test command), bin/ must hold
// mirrord: the VSIX must carry the binary the extension prefers.

import * as fs from 'fs';
import * as path from 'path';

const [vsix, ...flags] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);
const bin = path.join(here, '..', 'bin');

/** name → { size, mode } of every entry, from the end-of-central-directory record. */
function listing(file) {
  const zip = fs.readFileSync(file);
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end -= 1;
  if (end < 0) throw new Error(`${file} is not a zip file`);
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries = new Map();
  for (let i = 0; i < count; i += 1) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const mode = zip.readUInt32LE(at + 38) >>> 16;
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    entries.set(name, { size, mode });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

const entries = listing(vsix);
const problems = [];
for (const name of ['extension/templates/mirrord.json', 'extension/schema/mirrord.schema.json', 'extension/out/src/extension.js']) {
  if (!entries.has(name)) problems.push(`${name} is missing`);
}
const bundled = fs.existsSync(bin) ? fs.readdirSync(bin) : [];
if (flags.includes('--require-bin') && !bundled.includes('mirrord')) {
  problems.push('bin/mirrord was not bundled: build mirrord first (cargo build --workspace)');
}
for (const name of bundled) {
  const entry = entries.get(`extension/bin/${name}`);
  const size = fs.statSync(path.join(bin, name)).size;
  if (entry === undefined) problems.push(`extension/bin/${name} is missing`);
  else if (entry.size !== size) problems.push(`extension/bin/${name} has ${entry.size} bytes, bin/${name} ${size}`);
  else if ((entry.mode & 0o111) === 0) problems.push(`extension/bin/${name} is not executable (mode ${entry.mode.toString(8)})`);
}
if (problems.length > 0) {
  console.error(`${vsix}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`${vsix}: ${entries.size} files, bin/: ${bundled.join(', ') || 'none'}`);
