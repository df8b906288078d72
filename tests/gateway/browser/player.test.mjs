// SPDX-License-Identifier: LGPL-2.1-or-later
// segdl-gateway's web player in a real browser: Debian's chromium, headless,
// driven with puppeteer-core. segdl-server serves a 12 s demo track cut
// 2 s + 3 s + ... and reveals one segment a second; segdl-gateway sits in
// front. The page plays /listen/demo: the time to first audio is measured,
// currentTime must pass every segment boundary with no stall longer than the
// reveal interval, the duration must be right once the track is complete, a
// seek into the complete track must land within 0.1 s, and a screenshot is
// saved. Every wait is bounded.
//
//   node player.test.mjs   (environment: SEGDL_SERVER, SEGDL_GATEWAY, SEGDL_NODE_DIR,
//                           CHROMIUM, SEGDL_SCREENSHOT, SEGDL_WORK_DIR)
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
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

// Starts a program and resolves with the URL it prints ("... listening on URL").
function start(exe, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${exe} did not start: ${out}`)), 30000);
    child.on("exit", (code) => reject(new Error(`${exe} exited (${code}): ${out}`)));
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

async function main() {
  const work = env("SEGDL_WORK_DIR");
  const upstream = await start(env("SEGDL_SERVER"), [
    "--demo", "--demo-seconds", String(SECONDS), "--segment-seconds", "2,3",
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
    const page = await browser.newPage();
    await page.setViewport({ width: 820, height: 900 });
    page.on("console", (m) => console.log(`page: ${m.text()}`));
    await page.goto(`${gateway}/?id=demo`, { timeout: 30000 });

    // Plays at once, while the backend still produces the track.
    await page.waitForFunction(() => window.segdl.firstAudioMs !== null, { timeout: 20000 });
    const first = await page.evaluate(() => window.segdl.firstAudioMs);
    console.log(`time to first audio: ${first} ms`);

    // Past every boundary, without a long stall.
    for (const b of BOUNDARIES) {
      await page.waitForFunction((t) => document.getElementById("audio").currentTime > t + 0.2,
        { timeout: 20000, polling: 100 }, b);
      console.log(`past ${b} s`);
    }
    const play = await page.evaluate(() => ({ waits: window.segdl.waits, errors: window.segdl.errors }));
    assert.deepEqual(play.errors, []);
    for (const w of play.waits) assert.ok(w < REVEAL_MS, `a stall of ${w} ms while playing`);

    // To the end: the duration of the streamed track is right.
    await page.waitForFunction(() => document.getElementById("audio").ended,
      { timeout: 20000, polling: 200 });
    const streamed = await page.evaluate(() => document.getElementById("audio").duration);
    console.log(`duration when the stream ended: ${streamed} s`);
    assert.ok(Math.abs(streamed - SECONDS) < 0.1, `duration ${streamed} s, ${SECONDS} expected`);

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
  for (const c of children) c.kill("SIGTERM");
}
process.exit(code);
