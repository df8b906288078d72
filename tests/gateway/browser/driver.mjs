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

// Chromium's last lines on its stderr (launch()), for failure reports.
const chromiumLines = [];

// Debian's chromium, headless, autoplay allowed. Its stderr is read to the
// end (the last 40 lines kept): puppeteer reads it only until the DevTools
// line, and the socket nobody read then filled up (its send buffer counts
// kernel memory: 212 KiB held a few KiB of small writes). Chromium's browser
// process writes there all its life (D-Bus errors, ALSA's "cannot find
// card" when it opens an audio stream), and its main thread then blocked in
// write(2): no page could start its audio any more (readyState 1, or 4
// with currentTime stuck at 0), after 23 to 28 media pages in one browser,
// whatever the form (docs/gateway.md, "Tests").
export async function launch(profileDir) {
  const require = createRequire(path.join(env("SEGDL_NODE_DIR"), "package.json"));
  const puppeteer = require("puppeteer-core");
  const browser = await puppeteer.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    userDataDir: profileDir,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    protocolTimeout: 120000,  // above every wait (waitForFunction is one protocol call)
  });
  let partial = "";
  browser.process().stderr.setEncoding("utf8");
  browser.process().stderr.on("data", (text) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop().slice(-1000);
    chromiumLines.push(...lines.map((l) => l.slice(0, 300)));
    chromiumLines.splice(0, Math.max(0, chromiumLines.length - 40));
  });
  browser.process().stderr.resume();  // puppeteer paused it (a data listener alone would not do)
  return browser;
}

// Before the page's own script: every event of the <audio> element logged
// with the time (ms after the page began), currentTime, readyState,
// networkState and the buffered ranges, for failure reports (describe()).
function logMediaEvents() {
  window.segdlEvents = [];
  // Every `waiting` once playing has begun: where, and what was buffered
  // then (timelineFaults() judges them).
  window.segdlStalls = [];
  document.addEventListener("DOMContentLoaded", () => {
    const a = document.getElementById("audio");
    let played = false;
    a.addEventListener("playing", () => { played = true; });
    a.addEventListener("waiting", () => {
      if (!played) return;
      const ranges = [];
      for (let i = 0; i < a.buffered.length; i++) ranges.push([a.buffered.start(i), a.buffered.end(i)]);
      window.segdlStalls.push({ at: a.currentTime, ranges });
    });
    const names = ["loadstart", "progress", "suspend", "abort", "error", "emptied", "stalled",
      "loadedmetadata", "loadeddata", "canplay", "canplaythrough", "playing", "waiting",
      "seeking", "seeked", "ended", "durationchange", "pause", "play"];
    for (const name of names) {
      a.addEventListener(name, () => {
        const ranges = [];
        for (let i = 0; i < a.buffered.length; i++)
          ranges.push(`${a.buffered.start(i).toFixed(2)}-${a.buffered.end(i).toFixed(2)}`);
        window.segdlEvents.push(`${Math.round(performance.now())} ${name} t=${a.currentTime.toFixed(2)} ` +
          `ready=${a.readyState} net=${a.networkState} buffered=[${ranges.join(",")}]`);
        if (window.segdlEvents.length > 400) window.segdlEvents.splice(0, 100);
      });
    }
  });
}

// What the stream's timeline did wrong, as the <audio> element shows it:
// `stalls` (window.segdlStalls: each `waiting` once playing, its time `at`
// and the buffered ranges then), the buffered ranges and the duration at
// the end. A `waiting` with a buffered range that starts beyond a hole after
// the playback position (the browser holds later data it cannot reach),
// and buffered ranges at the end that are not one range from 0 to the
// duration, are faults: one text each (none: []). A `waiting` with nothing
// beyond is not: the player ran out of data or of CPU.
//
// Chromium's progressive player (FFmpegDemuxer) counts a buffered range from
// one packet's timestamp to the next one's, so a jump in the timestamps of
// the stream it reads shows no hole: a 2 s gap in the middle of a WebM Opus
// or a fragmented MP4 AAC stream, played to its end, gave one range
// [0, duration] and no `waiting` (measured with Debian's chromium). Its
// ranges split only where it stopped reading and read again (a seek, or
// the byte ranges of a file with a length). So these faults catch a player
// that has data it cannot play, not a gap in the timestamps: the stream
// suite (gateway-listen) checks those, buffer by buffer. check.test.mjs
// shows each fault reported (docs/gateway.md, "Tests").
export function timelineFaults({ stalls, buffered, duration }) {
  const faults = [];
  const ranges = (rs) => JSON.stringify(rs.map(([s, e]) => [+s.toFixed(3), +e.toFixed(3)]));
  for (const { at, ranges: rs } of stalls) {
    if (rs.some(([s]) => s > at + 0.05))
      faults.push(`playback waited at ${at.toFixed(3)} s before a hole in what it had buffered ` +
        `(${ranges(rs)}): the stream's timeline has a gap there`);
  }
  const whole = buffered.length === 1 && buffered[0][0] < 0.05 &&
    Math.abs(buffered[0][1] - duration) < 0.1;
  if (!whole)
    faults.push(`buffered ${ranges(buffered)} at the end, one range from 0 to the duration ` +
      `(${duration} s) expected`);
  return faults;
}

// The page's /listen answers as the browser's network stack saw them (the
// DevTools protocol): status, Content-Type, bytes received, whether and when
// each finished or failed.
async function followListen(page, id) {
  const cdp = await page.createCDPSession();
  const listen = new Map();  // request id -> what was seen
  const t0 = Date.now();
  const of = (e) => listen.get(e.requestId);
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.request.url.includes(`/listen/${id}`))
      listen.set(e.requestId, { sent: Date.now() - t0, range: e.request.headers.Range || null,
        status: null, type: null, bytes: 0, end: null });
  });
  cdp.on("Network.responseReceived", (e) => {
    const l = of(e);
    if (l) Object.assign(l, { status: e.response.status, type: e.response.headers["content-type"] ||
      e.response.headers["Content-Type"] || null });
  });
  cdp.on("Network.dataReceived", (e) => { const l = of(e); if (l) l.bytes += e.dataLength; });
  cdp.on("Network.loadingFinished", (e) => {
    const l = of(e);
    if (l) l.end = `finished at ${Date.now() - t0} ms`;
  });
  cdp.on("Network.loadingFailed", (e) => {
    const l = of(e);
    if (l) l.end = `failed at ${Date.now() - t0} ms: ${e.errorText}${e.canceled ? " (canceled)" : ""}`;
  });
  await cdp.send("Network.enable");
  return listen;
}

// What a page's <audio> element and its /listen answers are doing: for a
// failure message, so that a CI log alone tells what happened.
export async function describe(p) {
  const listen = [...p.listen.values()].map((l) =>
    `request at ${l.sent} ms${l.range ? ` (Range ${l.range})` : ""}: ${l.status} ${l.type}, ` +
    `${l.bytes} bytes received, ${l.end || "still open"}`);
  let media;
  let timer;
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error("no answer within 10 s")), 10000);
  });
  try {
    media = await Promise.race([late, p.page.evaluate(() => {
      const a = document.getElementById("audio");
      const ranges = [];
      for (let i = 0; i < a.buffered.length; i++)
        ranges.push(`${a.buffered.start(i).toFixed(2)}-${a.buffered.end(i).toFixed(2)}`);
      return `currentTime ${a.currentTime}, duration ${a.duration}, readyState ${a.readyState}, ` +
        `networkState ${a.networkState}, paused ${a.paused}, ended ${a.ended}, ` +
        `buffered [${ranges.join(",")}], error ${a.error ? a.error.code + " " + a.error.message : "none"}, ` +
        `stalls ${JSON.stringify(window.segdl.waits)}, page errors ${JSON.stringify(window.segdl.errors)}\n` +
        `  last media events (ms after the page began):\n    ${window.segdlEvents.slice(-25).join("\n    ")}`;
    })]);
  } catch (e) {
    media = `(the page could not be read: ${e.message})`;
  } finally {
    clearTimeout(timer);
  }
  return `${p.name}: ${media}\n  /listen: ${listen.join("; ") || "never requested"}`;
}

// page.waitForFunction(fn, arg) within `timeout` ms; on a timeout an error
// that says which page waited for `what`, and its state (describe()).
export async function waitOn(p, what, timeout, fn, arg, polling = 100) {
  try {
    await p.page.waitForFunction(fn, { timeout, polling }, arg);
  } catch (e) {
    throw new Error(`${p.name}: ${what}: not within ${timeout} ms (${e.message})\n${await describe(p)}`);
  }
}

// Opens the player page on /?id=ID in a browser context of its own
// (Chromium allows 6 connections per host in one network context, and
// streaming <audio> elements with their status polls would wait on each
// other there) and waits for its first audio. With `accept`, every request
// of the page carries that Accept header (the <audio> element's own is
// */*), so the gateway sends that form. Resolves with the page, the time to
// first audio and the media event marks (ms after play()), the /listen
// answer's Content-Type and the time its head took after its request, and
// what its /listen answers did (`listen`, for describe()).
// Navigation ends at DOMContentLoaded: the load event waits for the <audio>
// element's first data, which the first-audio wait bounds and reports.
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
  await page.evaluateOnNewDocument(logMediaEvents);
  const p = { page, context, name, listen: await followListen(page, id) };
  try {
    await page.goto(`${gateway}/?id=${id}`, { timeout: 30000, waitUntil: "domcontentloaded" });
  } catch (e) {
    throw new Error(`${name}: the page did not open (${e.message})\n${await describe(p)}`);
  }
  // 60 s: 23 s were measured at load 32 on two cores (five pages at once);
  // before, the page load (30 s) waited for the first data, then 20 s more.
  await waitOn(p, "first audio (playing)", 60000, () => window.segdl.firstAudioMs !== null);
  const { first, marks } = await page.evaluate(
    () => ({ first: window.segdl.firstAudioMs, marks: window.segdl.marks }));
  return Object.assign(p, { first, marks, type: seen.type, headMs: seen.headMs });
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

// Runs `main`, prints `pass` (if given) or FAIL with the error, stops every
// child started by start() and exits with 0 or 1.
export async function runMain(main, pass) {
  let code = 0;
  try {
    await main();
    if (pass) console.log(pass);
  } catch (e) {
    console.error(`FAIL: ${e.stack || e}`);
    if (chromiumLines.length)
      console.error(`chromium's last lines on stderr:\n  ${chromiumLines.join("\n  ")}`);
    code = 1;
  } finally {
    stopAll();
  }
  process.exit(code);
}
