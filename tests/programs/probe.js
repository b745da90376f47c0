// Probe of what a Node.js program sees; runs itself again as a child.
const fs = require("fs");
const dns = require("dns");
const net = require("net");
const dgram = require("dgram");
const { spawnSync } = require("child_process");

const prefix = process.argv[2] || "";
const out = (k, v) => console.log(`${prefix}${k}=${v}`);
const err = (e) => "ERR:" + (e.code || e.name);
const timeout = (p) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error("timeout")), 10000))]);

async function main() {
  out("env", process.env.POD_NAME);
  try { out("file", fs.readFileSync("/app/config/message.txt", "utf8").trim()); } catch (e) { out("file", err(e)); }
  try { fs.readFileSync("/app/secrets/token"); out("notfound", "opened"); } catch (e) { out("notfound", err(e)); }
  try { out("dns", (await timeout(dns.promises.lookup("backend.pod.test", 4))).address); } catch (e) { out("dns", err(e)); }
  try {
    out("tcp", await timeout(new Promise((resolve, reject) => {
      const s = net.connect(7001, "backend.pod.test", () => s.write("tcp-ping"));
      s.on("data", (d) => { resolve(d.toString()); s.destroy(); });
      s.on("error", reject);
    })));
  } catch (e) { out("tcp", err(e)); }
  try {
    out("udp", await timeout(new Promise((resolve, reject) => {
      const s = dgram.createSocket("udp4");
      s.on("message", (m) => { resolve(m.toString()); s.close(); });
      s.on("error", reject);
      s.send("udp-ping", 7002, "backend.pod.test");
    })));
  } catch (e) { out("udp", err(e)); }
  if (!prefix) {
    const r = spawnSync(process.execPath, [__filename, "child."], { stdio: "inherit" });
    if (r.status !== 0) process.exit(1);
  }
}
main();
