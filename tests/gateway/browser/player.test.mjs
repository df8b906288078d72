// SPDX-License-Identifier: LGPL-2.1-or-later
// segdl-gateway's web player in a real browser: Debian's chromium, headless,
// driven with puppeteer-core. segdl-server serves three 12 s tracks cut
// 2 s + 3 s + ... and reveals one segment a second: its demo in ADTS AAC
// and MP3, and an Opus track in WebM files cut by ffmpeg (YouTube's form);
// segdl-gateway sits in front. Three pages play /listen/ID at once, each
// while its track is still produced: the time to first audio is measured,
// currentTime must pass every segment boundary with no stall longer than the
// reveal interval, the stream must end with the right duration, and its
// Content-Type is the codec's default form. Then the complete ADTS track
// again: one file whose duration is right at once, a seek must land within
// 0.1 s, and a screenshot is saved. Every wait is bounded.
//
//   node player.test.mjs   (environment: SEGDL_SERVER, SEGDL_GATEWAY, SEGDL_NODE_DIR,
//                           CHROMIUM, SEGDL_SCREENSHOT, SEGDL_WORK_DIR)
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const require = createRequire(path.join(env("SEGDL_NODE_DIR"), "package.json"));
const puppeteer = require("puppeteer-core");

const SECONDS = 12;                // the demo's length
const BOUNDARIES = [2, 5, 8, 11];  // where its segments meet (2 s, then 3 s each)
const REVEAL_MS = 1000;            // one segment revealed a second
const children = [];
let stopping = false;  // set when the test ends its children

// Starts a program and resolves with the URL it prints ("... listening on URL").
function start(exe, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${exe} did not start: ${out}`)), 30000);
    child.on("exit", (code, signal) => {
      if (!stopping) console.error(`${path.basename(exe)} exited: ${signal || code}`);
      reject(new Error(`${exe} exited (${signal || code}): ${out}`));
    });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}

// Cuts a SECONDS-long Opus track into WebM files at BOUNDARIES (ffmpeg, as
// YouTube's form), as segdl-server --root wants them: ROOT/opus/seg_N.webm.
function makeOpus(root) {
  fs.mkdirSync(path.join(root, "opus"), { recursive: true });
  const r = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-f", "lavfi", "-i",
    `sine=frequency=330:duration=${SECONDS}`, "-c:a", "libopus", "-b:a", "64k", "-f", "segment",
    "-segment_times", BOUNDARIES.join(","), "-segment_format", "webm",
    path.join(root, "opus", "seg_%d.webm")], { stdio: "inherit", timeout: 60000 });
  if (r.status !== 0) throw new Error(`ffmpeg could not make the Opus track (${r.status})`);
}

// Opens the player page on /?id=ID and follows its <audio> while the
// backend still produces the track: first audio, past every boundary with no
// stall longer than the reveal interval, ended, and the duration then.
// Each page in a context of its own: Chromium allows 6 connections per host
// in one network context, and three streaming <audio> elements with their
// status polls would wait on each other there.
async function playThrough(browser, gateway, id) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 820, height: 900 });
  page.on("console", (m) => console.log(`${id} page: ${m.text()}`));
  let type = null;  // the Content-Type of the first /listen answer
  let headMs = null;  // when its head arrived, in ms after its request was sent
  page.on("response", (r) => {
    if (type !== null || !r.url().includes(`/listen/${id}`)) return;
    type = r.headers()["content-type"];
    const t = r.timing();
    if (t) headMs = Math.round(t.receiveHeadersEnd - t.sendStart);
  });
  await page.goto(`${gateway}/?id=${id}`, { timeout: 30000 });
  await page.waitForFunction(() => window.segdl.firstAudioMs !== null, { timeout: 20000 });
  const { first, marks } = await page.evaluate(
    () => ({ first: window.segdl.firstAudioMs, marks: window.segdl.marks }));
  console.log(`${id}: time to first audio ${first} ms (/listen head ${headMs} ms after its ` +
    `request; media events ${JSON.stringify(marks)})`);
  for (const b of BOUNDARIES) {
    await page.waitForFunction((t) => document.getElementById("audio").currentTime > t + 0.2,
      { timeout: 20000, polling: 100 }, b);
    console.log(`${id}: past ${b} s`);
  }
  await page.waitForFunction(() => document.getElementById("audio").ended,
    { timeout: 20000, polling: 200 });
  const seen = await page.evaluate(() => ({
    waits: window.segdl.waits, errors: window.segdl.errors,
    duration: document.getElementById("audio").duration }));
  console.log(`${id}: ${type}, duration when the stream ended ${seen.duration} s, ` +
    `stalls ${JSON.stringify(seen.waits)}`);
  assert.deepEqual(seen.errors, [], `${id}: errors on the page`);
  for (const w of seen.waits) assert.ok(w < REVEAL_MS, `${id}: a stall of ${w} ms while playing`);
  assert.ok(Math.abs(seen.duration - SECONDS) < 0.1,
    `${id}: duration ${seen.duration} s, ${SECONDS} expected`);
  return { page, first, type };
}

async function main() {
  const work = env("SEGDL_WORK_DIR");
  makeOpus(path.join(work, "root"));
  const upstream = await start(env("SEGDL_SERVER"), [
    "--demo", "--demo-seconds", String(SECONDS), "--segment-seconds", "2,3",
    "--root", path.join(work, "root"),
    "--reveal-every", String(REVEAL_MS / 1000), "--status-style", "rich", "--port", "0"]);
  const gateway = await start(env("SEGDL_GATEWAY"), [
    "--upstream", upstream, "--cache-dir", path.join(work, "cache"),
    "--listen", "127.0.0.1:0", "--id-pattern", "^[A-Za-z0-9_-]{1,64}$"]);

  const browser = await puppeteer.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    userDataDir: path.join(work, "profile"),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    protocolTimeout: 60000,
  });
  try {
    // The three forms at once, each while the backend still produces it:
    // ADTS AAC, Opus in WebM (cut by ffmpeg), MP3.
    const played = await Promise.all(
      [["demo", "audio/aac"], ["opus", "audio/webm"], ["demo-mp3", "audio/mpeg"]].map(
        async ([id, type]) => {
          const p = await playThrough(browser, gateway, id);
          assert.equal(p.type, type, `${id}: served as ${p.type}`);
          return p;
        }));
    const page = played[0].page;
    for (const p of played.slice(1)) await p.page.close();

    // The complete track again: one file with its length; duration, and a seek.
    await page.evaluate(() => {
      const a = document.getElementById("audio");
      a.pause();
      a.src = `/listen/demo?again=1`;
      a.load();
    });
    await page.waitForFunction(() => document.getElementById("audio").readyState >= 1,
      { timeout: 20000 });
    const whole = await page.evaluate(() => document.getElementById("audio").duration);
    console.log(`duration of the complete track: ${whole} s`);
    assert.ok(Math.abs(whole - SECONDS) < 0.1, `duration ${whole} s, ${SECONDS} expected`);
    const landed = await page.evaluate(() => new Promise((resolve, reject) => {
      const a = document.getElementById("audio");
      const t = setTimeout(() => reject(new Error("no seeked event")), 20000);
      a.addEventListener("seeked", () => { clearTimeout(t); resolve(a.currentTime); }, { once: true });
      a.currentTime = 7.25;
    }));
    console.log(`seek to 7.25 s landed at ${landed} s`);
    assert.ok(Math.abs(landed - 7.25) < 0.1, `landed at ${landed}`);
    await page.evaluate(() => document.getElementById("audio").play());
    await page.waitForFunction(() => document.getElementById("segments").children.length >= 5 &&
      [...document.getElementById("segments").children].every((li) => li.className === "cached"),
      { timeout: 20000 });
    await page.screenshot({ path: env("SEGDL_SCREENSHOT") });
    console.log(`screenshot: ${env("SEGDL_SCREENSHOT")}`);
  } finally {
    await browser.close();
  }
}

let code = 0;
try {
  await main();
  console.log("PASS");
} catch (e) {
  console.error(`FAIL: ${e.stack || e}`);
  code = 1;
} finally {
  stopping = true;
  for (const c of children) c.kill("SIGTERM");
}
process.exit(code);
