// SPDX-License-Identifier: LGPL-2.1-or-later
// Time to first audio of segdl-gateway's web player in Chromium (bench/browser.sh
// runs it): for every form and run, a fresh segdl-server (its demo, 2 s + 3 s
// segments, with the latency, bandwidth and reveal interval asked) and a
// fresh segdl-gateway with an empty cache in front, one page in a new
// browser context playing /?id=ID; the page's own marks (ms after play():
// the /listen answer's first byte from its resource timing, loadedmetadata,
// canplay, playing) are collected, and their medians printed as Markdown
// beside the GStreamer floor (souphttpsrc reading segment 0 straight from
// segdl-server into decodebin, first decoded buffer; bench/gstrun.py).
//
// Environment: SEGDL_SERVER, SEGDL_GATEWAY, SEGDL_NODE_DIR, CHROMIUM,
// SEGDL_WORK_DIR, BENCH_RUNS, BENCH_LATENCY_MS, BENCH_BANDWIDTH_KBPS,
// BENCH_REVEAL_S, BENCH_FORMS ("demo demo-mp3 opus demo:audio/mp4 opus:audio/ogg"),
// BENCH_GSTRUN (bench/gstrun.py).
import { spawnSync } from "node:child_process";
import path from "node:path";
import { env, start, stop, makeOpus, launch, openPlayer, firstBytesMs, waitOn, runMain } from
  "../tests/gateway/browser/driver.mjs";

const SECONDS = 12;
const BOUNDARIES = [2, 5, 8, 11];
const runs = Number(process.env.BENCH_RUNS || 5);
const latency = String(process.env.BENCH_LATENCY_MS || 0);
const bandwidth = String(process.env.BENCH_BANDWIDTH_KBPS || 0);
const reveal = String(process.env.BENCH_REVEAL_S || 1);
const forms = (process.env.BENCH_FORMS || "demo demo-mp3 opus demo:audio/mp4 opus:audio/ogg")
  .split(/\s+/).filter(Boolean).map((f) => {
    const [id, accept] = f.split(/:(.*)/s);
    return { id, accept: accept || undefined, label: accept ? `${id} as ${accept}` : id };
  });
const MARKS = ["first bytes", "loadedmetadata", "canplay", "playing"];

const median = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : Math.round((v[m - 1] + v[m]) / 2);
};

function serverArgs(root) {
  return ["--demo", "--demo-seconds", String(SECONDS), "--segment-seconds", "2,3",
    "--root", root, "--reveal-every", reveal, "--latency-ms", latency,
    "--bandwidth-kbps", bandwidth, "--status-style", "rich", "--port", "0"];
}

// One page on a cold gateway and a fresh backend: the marks of its first audio.
async function onePlay(browser, work, root, form, run) {
  const { url: upstream, child: server } = await start(env("SEGDL_SERVER"), serverArgs(root));
  const { url: gateway, child: gw } = await start(env("SEGDL_GATEWAY"), [
    "--upstream", upstream, "--cache-dir", path.join(work, `cache-${form.id}-${run}-${Date.now()}`),
    "--listen", "127.0.0.1:0", "--id-pattern", "^[A-Za-z0-9_-]{1,64}$"]);
  try {
    const p = await openPlayer(browser, gateway, form.id, { accept: form.accept, log: false });
    await waitOn(p, `ended (run ${run + 1})`, 60000, () => document.getElementById("audio").ended,
      undefined, 200);
    const first = await firstBytesMs(p.page, form.id);
    await p.context.close();
    return { "first bytes": first, loadedmetadata: p.marks.loadedmetadata,
      canplay: p.marks.canplay, playing: p.marks.playing, type: p.type };
  } finally {
    await stop(gw);
    await stop(server);
  }
}

// The floor: segment 0 straight from segdl-server into decodebin, `runs` times.
async function floor(root, id) {
  const { url: upstream, child: server } = await start(env("SEGDL_SERVER"), serverArgs(root));
  try {
    const out = [];
    for (let r = 0; r < runs; r++) {
      const desc = `souphttpsrc location="${upstream}/stream?v=${id}&segment=0" ! decodebin ! ` +
        "fakesink name=sink sync=false";
      // Debian's python3, which has GStreamer's bindings (as bench/contenders.py).
      const g = spawnSync("/usr/bin/python3", [env("BENCH_GSTRUN"), "--first-only", "--timeout", "30", desc],
        { encoding: "utf8", timeout: 60000 });
      if (g.status !== 0) throw new Error(`gstrun.py failed: ${g.stderr}`);
      out.push(Math.round(JSON.parse(g.stdout).first[0] * 1000));
    }
    return out;
  } finally {
    await stop(server);
  }
}

async function main() {
  const work = env("SEGDL_WORK_DIR");
  const root = path.join(work, "root");
  makeOpus(root, "opus", SECONDS, BOUNDARIES);
  const browser = await launch(path.join(work, "profile"));
  const results = new Map(forms.map((f) => [f.label, []]));
  try {
    for (let run = 0; run < runs; run++) {
      for (const form of forms) {  // in turn, one page at a time
        const r = await onePlay(browser, work, root, form, run);
        results.get(form.label).push(r);
        console.error(`run ${run + 1}/${runs} ${form.label} (${r.type}): ` +
          MARKS.map((m) => `${m} ${r[m]}`).join(", "));
      }
    }
  } finally {
    await browser.close();
  }
  const floors = new Map();
  for (const id of new Set(forms.map((f) => f.id))) floors.set(id, await floor(root, id));

  console.log(`Chromium headless, ${runs} runs a form (medians, ms after play()); ` +
    `segdl-server --latency-ms ${latency} --bandwidth-kbps ${bandwidth} --reveal-every ${reveal}, ` +
    "a fresh server and gateway (empty cache) for every run.\n");
  console.log(`| | ${forms.map((f) => f.label).join(" | ")} |`);
  console.log(`|---|${forms.map(() => "---").join("|")}|`);
  console.log(`| Content-Type | ${forms.map((f) => results.get(f.label)[0].type).join(" | ")} |`);
  for (const m of MARKS) {
    console.log(`| ${m} | ${forms.map((f) => median(results.get(f.label).map((r) => r[m])))
      .join(" | ")} |`);
  }
  console.log(`| floor: souphttpsrc segment 0 ! decodebin, first buffer | ${forms.map(
    (f) => median(floors.get(f.id))).join(" | ")} |`);
  console.log(`| playing / floor | ${forms.map((f) => {
    const p = median(results.get(f.label).map((r) => r.playing));
    const fl = median(floors.get(f.id));
    return p && fl ? (p / fl).toFixed(1) + " x" : "-";
  }).join(" | ")} |`);
  console.log(`\nEvery run (playing): ${forms.map((f) => `${f.label} ` +
    JSON.stringify(results.get(f.label).map((r) => r.playing))).join("; ")}`);
}

await runMain(main);
