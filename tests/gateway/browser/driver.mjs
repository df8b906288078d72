// SPDX-License-Identifier: LGPL-2.1-or-later
// What the browser test (player.test.mjs) and the benchmark
// (bench/browser.mjs) share: starting segdl-server and segdl-gateway, an
// Opus track cut by ffmpeg, Debian's chromium headless through
// puppeteer-core, and the player page followed to its first audio.
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const children = [];
let stopping = false;  // set when the caller ends its children

// Starts a program and resolves with the URL it prints ("... listening on
// URL"); the child is stopped by stopAll() (or stop(child)).
export function start(exe, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    // 60 s: the gateway initialises GStreamer before it listens, which
    // with no registry yet (a fresh build) scans every plugin.
    const timer = setTimeout(() => reject(new Error(`${exe} did not start: ${out}`)), 60000);
    child.on("exit", (code, signal) => {
      if (!stopping && !child.stopping) console.error(`${path.basename(exe)} exited: ${signal || code}`);
      reject(new Error(`${exe} exited (${signal || code}): ${out}`));
    });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], child });
      }
    });
  });
}

// Stops one child started by start() and waits for its end (bounded).
export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.stopping = true;
    const timer = setTimeout(() => { child.kill("SIGKILL"); resolve(); }, 10000);
    child.once("exit", () => { clearTimeout(timer); resolve(); });
    child.kill("SIGTERM");
  });
}

export function stopAll() {
  stopping = true;
  for (const c of children) c.kill("SIGTERM");
}

// Cuts a `seconds`-long Opus track into WebM files at `boundaries` (ffmpeg,
// as YouTube's form), as segdl-server --root wants them: ROOT/ID/seg_N.webm.
export function makeOpus(root, id, seconds, boundaries) {
  fs.mkdirSync(path.join(root, id), { recursive: true });
  const r = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-f", "lavfi", "-i",
    `sine=frequency=330:duration=${seconds}`, "-c:a", "libopus", "-b:a", "64k", "-f", "segment",
    "-segment_times", boundaries.join(","), "-segment_format", "webm",
    path.join(root, id, "seg_%d.webm")], { stdio: "inherit", timeout: 60000 });
  if (r.status !== 0) throw new Error(`ffmpeg could not make the Opus track (${r.status})`);
}

// Debian's chromium, headless, autoplay allowed.
export async function launch(profileDir) {
  const require = createRequire(path.join(env("SEGDL_NODE_DIR"), "package.json"));
  const puppeteer = require("puppeteer-core");
  return puppeteer.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    userDataDir: profileDir,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    protocolTimeout: 60000,
  });
}

// Opens the player page on /?id=ID in a browser context of its own
// (Chromium allows 6 connections per host in one network context, and
// streaming <audio> elements with their status polls would wait on each
// other there) and waits for its first audio. With `accept`, every request
// of the page carries that Accept header (the <audio> element's own is
// */*), so the gateway sends that form. Resolves with the page, the time to
// first audio and the media event marks (ms after play()), the /listen
// answer's Content-Type and the time its head took after its request.
export async function openPlayer(browser, gateway, id, { accept, log = true } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 820, height: 900 });
  if (accept) await page.setExtraHTTPHeaders({ Accept: accept });
  const name = accept ? `${id} (${accept})` : id;
  if (log) page.on("console", (m) => console.log(`${name} page: ${m.text()}`));
  const seen = { type: null, headMs: null };
  page.on("response", (r) => {
    if (seen.type !== null || !r.url().includes(`/listen/${id}`)) return;
    seen.type = r.headers()["content-type"];
    const t = r.timing();
    if (t) seen.headMs = Math.round(t.receiveHeadersEnd - t.sendStart);
  });
  await page.goto(`${gateway}/?id=${id}`, { timeout: 30000 });
  await page.waitForFunction(() => window.segdl.firstAudioMs !== null, { timeout: 20000 });
  const { first, marks } = await page.evaluate(
    () => ({ first: window.segdl.firstAudioMs, marks: window.segdl.marks }));
  return { page, context, name, first, marks, type: seen.type, headMs: seen.headMs };
}

// When the /listen answer's first byte came, in ms after play() (the
// page's resource timing of /listen, known once the answer has ended), or
// null when Chromium did not record it.
export async function firstBytesMs(page, id) {
  return page.evaluate((id) => {
    const e = performance.getEntriesByType("resource").find(
      (r) => r.name.includes(`/listen/${id}`) && r.responseStart > 0);
    return e ? Math.round(e.responseStart - window.segdl.start) : null;
  }, id);
}
