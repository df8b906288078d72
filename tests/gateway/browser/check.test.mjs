// SPDX-License-Identifier: LGPL-2.1-or-later
// The browser test's timeline check (timelineFaults() in driver.mjs) shown
// failing, without a browser: run.sh runs this first. A `waiting` before a
// hole in the buffered ranges and ranges at the end that are not one range
// from 0 to the duration are each reported; a `waiting` with nothing
// buffered beyond (the player ran out of data or of CPU) and one range
// [0, duration] are not. Chromium itself shows no hole for a jump in a
// stream's timestamps (driver.mjs says what was measured), so no stream can
// make the browser show one: the states are given here as the page records
// them (window.segdlStalls, buffered, duration).
//
//   node check.test.mjs
import assert from "node:assert/strict";
import { timelineFaults } from "./driver.mjs";

const ok = (seen) => assert.deepEqual(timelineFaults(seen), [], JSON.stringify(seen));
const faults = (seen, ...patterns) => {
  const got = timelineFaults(seen);
  assert.equal(got.length, patterns.length, `${JSON.stringify(seen)}: ${JSON.stringify(got)}`);
  patterns.forEach((p, i) => assert.match(got[i], p));
};

// Played through: one range, no `waiting`, or one where the data ran out.
ok({ stalls: [], buffered: [[0, 12.0]], duration: 12.0 });
ok({ stalls: [{ at: 4.0, ranges: [[0, 4.01]] }], buffered: [[0, 12.02]], duration: 12.0 });
// A range that begins right at the position (within 50 ms) is no hole.
ok({ stalls: [{ at: 4.0, ranges: [[0, 3.99], [4.04, 6]] }], buffered: [[0.01, 12]], duration: 12 });

// A `waiting` at 4 s with 6 s to 12 s buffered beyond a hole: reported with
// where and what was buffered; the two ranges left at the end as well.
faults({ stalls: [{ at: 4.0, ranges: [[0, 4.0], [6.0, 12.0]] }], buffered: [[0, 4.0], [6.0, 12.0]],
  duration: 12.0 },
/waited at 4\.000 s before a hole in what it had buffered \(\[\[0,4\],\[6,12\]\]\)/,
/buffered \[\[0,4\],\[6,12\]\] at the end, one range from 0 to the duration \(12 s\) expected/);
// Only the `waiting` that had a hole ahead of it.
faults({ stalls: [{ at: 2.5, ranges: [[0, 2.5]] }, { at: 7.25, ranges: [[0, 7.25], [8, 9]] }],
  buffered: [[0, 12]], duration: 12 }, /waited at 7\.250 s before a hole/);
// Ranges at the end that start late, end short of the duration, or none.
faults({ stalls: [], buffered: [[0.5, 12]], duration: 12 }, /buffered \[\[0\.5,12\]\] at the end/);
faults({ stalls: [], buffered: [[0, 11.8]], duration: 12 }, /buffered \[\[0,11\.8\]\] at the end/);
faults({ stalls: [], buffered: [], duration: 12 }, /buffered \[\] at the end/);

console.log("PASS: timelineFaults reports every hole and split end given, and nothing else");
