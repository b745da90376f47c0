// Drives `mirrord dap --listen` with VS Code's own DAP test client
// (@vscode/debugadapter-testsupport): a breakpoint in a program that reads
// what only the stand-in pod has; exits 0 when every check holds.
// Usage: node debugpy_breakpoint.js PORT PROGRAM TARGET
'use strict';
const assert = require('assert');
const fs = require('fs');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

async function main() {
  const [port, program, target] = process.argv.slice(2);
  const line = fs.readFileSync(program, 'utf8').split('\n').findIndex((l) => l.includes('BREAK')) + 1;
  const dc = new DebugClient('unused', 'unused', 'debugpy');
  dc.defaultTimeout = 60000;
  await dc.start(Number(port));
  const launch = {
    type: 'debugpy', request: 'launch', name: 'npm client', program,
    console: 'internalConsole', justMyCode: true, mirrord: { target },
  };
  const [, , stack] = await dc.hitBreakpoint(launch, { path: program, line });
  const frame = stack.body.stackFrames[0];
  const scopes = await dc.scopesRequest({ frameId: frame.id });
  const vars = await dc.variablesRequest({ variablesReference: scopes.body.scopes[0].variablesReference });
  const value = (name) => (vars.body.variables.find((v) => v.name === name) || {}).value;
  assert.strictEqual(value('pod_name'), "'standin-pod'");
  assert.strictEqual(value('message'), "'this file exists only in the pod'");
  assert.strictEqual(value('echo'), "'dap-ping'");
  const threads = await dc.threadsRequest();
  await Promise.all([
    dc.continueRequest({ threadId: threads.body.threads[0].id }),
    dc.assertOutput('stdout', 'pod_name=standin-pod message=this file exists only in the pod echo=dap-ping'),
    dc.waitForEvent('terminated'),
  ]);
  await dc.stop();
  console.log('npm DAP client: all checks passed');
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
