// SPDX-License-Identifier: LGPL-2.1-or-later
// segdl-gateway's web player in a real browser: Debian's chromium, headless,
// driven with puppeteer-core (driver.mjs). segdl-server serves three 12 s
// tracks cut 2 s + 3 s + ... and reveals one segment a second: its demo in
// ADTS AAC and MP3, and an Opus track in WebM files cut by ffmpeg (YouTube's
// form); segdl-gateway sits in front. Five pages play /listen/ID at once,
// each while its track is still produced: the three in their codec's
// default form (ADTS, MP3, WebM), and with an Accept header the other forms
// (AAC as fragmented MP4, Opus as Ogg). On each the time to first audio is
// measured, currentTime must pass every segment boundary with no stall
// before a hole in the buffered ranges (playThrough), the stream must end with
// the right duration, and its Content-Type is the form asked for. Then the complete
// ADTS track again: one file whose duration is right at once, a seek must
// land within 0.1 s, and a screenshot is saved. Every wait is bounded.
//
//   node player.test.mjs   (environment: SEGDL_SERVER, SEGDL_GATEWAY, SEGDL_NODE_DIR,
//                           CHROMIUM, SEGDL_SCREENSHOT, SEGDL_WORK_DIR)
import assert from "node:assert/strict";
import path from "node:path";
import { env, start, makeOpus, launch, openPlayer, describe, waitOn, runMain, timelineFaults } from
  "./driver.mjs";

const SECONDS = 12;                // the demo's length
const BOUNDARIES = [2, 5, 8, 11];  // where its segments meet (2 s, then 3 s each)
const REVEAL_MS = 1000;            // one segment revealed a second

// Follows a page's <audio> (openPlayer) while the backend still produces
// the track: past every boundary, ended, and the duration then. No
// `waiting` may come while the browser holds later data it cannot reach (a
// buffered range beyond a hole), and the buffered ranges at the end must be
// one range from 0 to the duration (timelineFaults() in driver.mjs, shown
// failing by check.test.mjs; Chromium shows no hole for a jump in the
// stream's timestamps, which gateway-listen checks instead). How long each
// `waiting` lasted is printed, not asserted: with the reveal every second
// (3 s of audio a second) the data is there before it is played, so on a
// loaded machine a wait measures the machine (2.8 s seen at load 28 on two
// cores, none quiet), and a bound on it would be a wall-clock assertion.
async function playThrough(browser, gateway, id, accept) {
  const p = await openPlayer(browser, gateway, id, { accept });
  const { page, name } = p;
  console.log(`${name}: time to first audio ${p.first} ms (/listen head ${p.headMs} ms after ` +
    `its request; media events ${JSON.stringify(p.marks)})`);
  for (const b of BOUNDARIES) {
    await waitOn(p, `currentTime past ${b} s`, 20000,
      (t) => document.getElementById("audio").currentTime > t + 0.2, b);
    console.log(`${name}: past ${b} s`);
  }
  await waitOn(p, "ended", 20000, () => document.getElementById("audio").ended, undefined, 200);
  const seen = await page.evaluate(() => {
    const a = document.getElementById("audio"), buffered = [];
    for (let i = 0; i < a.buffered.length; i++) buffered.push([a.buffered.start(i), a.buffered.end(i)]);
    return { waits: window.segdl.waits, errors: window.segdl.errors, duration: a.duration,
      stalls: window.segdlStalls, buffered };
  });
  console.log(`${name}: ${p.type}, duration when the stream ended ${seen.duration} s, ` +
    `stalls ${JSON.stringify(seen.waits)} ms, at ${JSON.stringify(seen.stalls)}, ` +
    `buffered ${JSON.stringify(seen.buffered)}`);
  const faults = timelineFaults(seen);
  const state = seen.errors.length || faults.length ||
    Math.abs(seen.duration - SECONDS) >= 0.1 ? `\n${await describe(p)}` : "";
  assert.deepEqual(seen.errors, [], `${name}: errors on the page${state}`);
  assert.deepEqual(faults, [], `${name}: the stream's timeline${state}`);
  assert.ok(Math.abs(seen.duration - SECONDS) < 0.1,
    `${name}: duration ${seen.duration} s, ${SECONDS} expected${state}`);
  return p;
}

async function main() {
  const work = env("SEGDL_WORK_DIR");
  makeOpus(path.join(work, "root"), "opus", SECONDS, BOUNDARIES);
  const { url: upstream } = await start(env("SEGDL_SERVER"), [
    "--demo", "--demo-seconds", String(SECONDS), "--segment-seconds", "2,3",
    "--root", path.join(work, "root"),
    "--reveal-every", String(REVEAL_MS / 1000), "--status-style", "rich", "--port", "0"]);
  const { url: gateway } = await start(env("SEGDL_GATEWAY"), [
    "--upstream", upstream, "--cache-dir", path.join(work, "cache"),
    "--listen", "127.0.0.1:0", "--id-pattern", "^[A-Za-z0-9_-]{1,64}$"]);

  const browser = await launch(path.join(work, "profile"));
  try {
    // The five forms at once, each while the backend still produces it:
    // ADTS AAC, Opus in WebM (cut by ffmpeg), MP3 by default; fragmented
    // MP4 and Ogg Opus when the page's requests accept only them.
    const played = await Promise.all(
      [["demo", "audio/aac"], ["opus", "audio/webm"], ["demo-mp3", "audio/mpeg"],
        ["demo", "audio/mp4", "audio/mp4"], ["opus", "audio/ogg", "audio/ogg"]].map(
        async ([id, type, accept]) => {
          const p = await playThrough(browser, gateway, id, accept);
          assert.equal(p.type, type, `${p.name}: served as ${p.type}`);
          return p;
        }));
    const page = played[0].page;
    for (const p of played.slice(1)) await p.context.close();

    // The complete track again, asked with the keyboard (the id typed into
    // the field, Enter): one file with its length; duration, and a seek.
    await page.evaluate(() => {
      document.getElementById("audio").pause();
      document.getElementById("id").value = "";
    });
    await page.focus("#id");
    await page.keyboard.type("demo");
    await page.keyboard.press("Enter");
    await waitOn(played[0], "the complete track's first audio", 20000, () =>
      window.segdl.firstAudioMs !== null && document.getElementById("audio").readyState >= 1);
    const whole = await page.evaluate(() => document.getElementById("audio").duration);
    console.log(`duration of the complete track: ${whole} s`);
    assert.ok(Math.abs(whole - SECONDS) < 0.1, `duration ${whole} s, ${SECONDS} expected`);
    const landed = await page.evaluate(() => new Promise((resolve) => {
      const a = document.getElementById("audio");
      const t = setTimeout(() => resolve(null), 20000);
      a.addEventListener("seeked", () => { clearTimeout(t); resolve(a.currentTime); }, { once: true });
      a.currentTime = 7.25;
    }));
    if (landed === null) assert.fail(`no seeked event within 20000 ms\n${await describe(played[0])}`);
    console.log(`seek to 7.25 s landed at ${landed} s`);
    assert.ok(Math.abs(landed - 7.25) < 0.1, `landed at ${landed}`);
    await page.evaluate(() => document.getElementById("audio").play());
    await waitOn(played[0], "every segment shown cached", 20000, () =>
      document.getElementById("segments").children.length >= 5 &&
      [...document.getElementById("segments").children].every((li) => li.className === "cached"));
    await page.screenshot({ path: env("SEGDL_SCREENSHOT") });
    console.log(`screenshot: ${env("SEGDL_SCREENSHOT")}`);
    // On a phone's screen nothing is wider than the screen.
    await page.setViewport({ width: 360, height: 740, isMobile: true, hasTouch: true });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 360, `the page is ${wide} px wide on a 360 px screen`);
  } finally {
    await browser.close();
  }
}

await runMain(main, "PASS");
