// An LSP client (vscode-languageserver-protocol, the library VS Code's own
// client is built on) that drives `mirrord ide --stdio` through a scenario
// and prints what it saw as one JSON object. It asserts nothing itself:
// tests/tests/ide.rs writes the scenario and checks the report.
//
// Usage: node ide_client.js SCENARIO.json
'use strict';

const fs = require('fs');
const { spawn } = require('child_process');
const {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
} = require('vscode-languageserver-protocol/node');

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const report = {
  diagnostics: {},
  completions: {},
  hovers: {},
  launches: {},
  pickRequests: [],
  progress: [],
  ended: [],
};

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function waitFor(check, ms, what) {
  return within(ms, what, new Promise((resolve) => {
    const poll = () => {
      const found = check();
      if (found) resolve(found); else setTimeout(poll, 50);
    };
    poll();
  }));
}

function childrenOf(pid) {
  const out = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) out.push(Number(entry));
    } catch (_) { /* exited meanwhile */ }
  }
  return out;
}

function runDebuggee(command, env, cwd) {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function main() {
  const service = spawn(scenario.binary, ['ide', '--stdio'], {
    cwd: scenario.workspace,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  report.servicePid = service.pid;
  const exited = new Promise((resolve) => {
    service.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const connection = createProtocolConnection(
    new StreamMessageReader(service.stdout),
    new StreamMessageWriter(service.stdin),
  );
  connection.onRequest('mirrord/pickTarget', (params) => {
    report.pickRequests.push(params);
    return { target: scenario.pickAnswer };
  });
  connection.onNotification('mirrord/progress', (p) => report.progress.push(p));
  connection.onNotification('mirrord/sessionEnded', (p) => report.ended.push(p));
  connection.onNotification('textDocument/publishDiagnostics', (p) => {
    report.diagnostics[p.uri] = p.diagnostics;
  });
  connection.listen();

  const init = await within(10000, 'initialize', connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri: `file://${scenario.workspace}`,
    capabilities: {},
  }));
  report.capabilities = init.capabilities;
  connection.sendNotification('initialized', {});

  for (const doc of scenario.documents) {
    connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri: doc.uri, languageId: doc.languageId, version: 1, text: doc.text },
    });
  }
  await waitFor(() => scenario.documents.every((d) => d.uri in report.diagnostics),
    10000, 'diagnostics for every document');
  const byName = {};
  for (const doc of scenario.documents) byName[doc.name] = report.diagnostics[doc.uri];
  report.diagnostics = byName;

  for (const q of scenario.completions) {
    const at = { textDocument: { uri: q.uri }, position: { line: q.line, character: q.character } };
    report.completions[q.name] = await connection.sendRequest('textDocument/completion', at);
  }
  for (const q of scenario.hovers) {
    const at = { textDocument: { uri: q.uri }, position: { line: q.line, character: q.character } };
    report.hovers[q.name] = await connection.sendRequest('textDocument/hover', at);
  }
  report.targets = await connection.sendRequest('mirrord/listTargets');

  for (const launch of scenario.launches) {
    try {
      report.launches[launch.name] = {
        result: await within(60000, `prepareLaunch ${launch.name}`,
          connection.sendRequest('mirrord/prepareLaunch', {
            configuration: launch.configuration,
            workspaceFolder: `file://${scenario.workspace}`,
          })),
      };
    } catch (e) {
      report.launches[launch.name] = { error: { code: e.code, message: e.message } };
    }
  }
  report.sessionsAfterLaunch = await connection.sendRequest('mirrord/sessions');

  if (scenario.endSession) await endOne(connection);
  if (scenario.debuggee) await runOne(connection);

  // Each session's processes (its intproxy's children: the agent), for
  // the test to check they are gone too.
  report.sessionChildren = (report.sessionsAfterLaunch ? report.sessionsAfterLaunch.sessions : [])
    .flatMap((session) => childrenOf(session.pid));
  if (scenario.killService) {
    // The service dies without a chance to clean up.
    process.kill(service.pid, 'SIGKILL');
  } else {
    // The editor goes away without `shutdown`: stdin closes.
    connection.dispose();
    service.stdin.end();
  }
  report.serviceExit = await within(15000, 'the service to exit', exited);
  connection.dispose();
}

async function endOne(connection) {
  const ending = report.launches[scenario.endSession];
  const endId = ending && ending.result && ending.result.sessionId;
  report.endResult = await within(10000, 'endSession', connection.sendRequest('mirrord/endSession', { sessionId: endId }));
  try {
    await connection.sendRequest('mirrord/endSession', { sessionId: endId });
    report.endAgain = 'accepted';
  } catch (e) {
    report.endAgain = e.message;
  }
  report.sessionsAfterEnd = await connection.sendRequest('mirrord/sessions');
}

async function runOne(connection) {
  const run = scenario.debuggee;
  const launched = report.launches[run.launch].result;
  // `${dlvToolPath}` stands for the debugger the configuration names (a Go
  // configuration's is rewritten).
  const command = run.command.map((arg) => arg.split('${dlvToolPath}').join(launched.configuration.dlvToolPath));
  report.debuggee = await within(60000, 'the debuggee',
    runDebuggee(command, { ...launched.configuration.env, PATH: process.env.PATH },
      launched.configuration.cwd || scenario.workspace));
  await waitFor(() => report.ended.find((e) => e.sessionId === launched.sessionId), 10000,
    'the debuggee\'s session to end').catch((e) => { report.debuggeeEndError = e.message; });
  report.sessionsAfterDebuggee = await connection.sendRequest('mirrord/sessions');
}

main()
  .catch((e) => { report.failure = String(e && e.stack || e); })
  .finally(() => {
    if (!report.serviceExit && report.servicePid) {
      // A failed run still ends the service (SIGTERM ends its sessions).
      try { process.kill(report.servicePid, 'SIGTERM'); } catch (_) { /* gone */ }
    }
    process.stdout.write(JSON.stringify(report));
    process.exit(0);
  });
