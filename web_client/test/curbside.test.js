// Unit tests of the curbside client's pure parts (src/curbside/status.js): the psychiatrist's
// ringing list as socket events and clicks change it, the PCP's status after a curbside:status
// event, the plain words for escalation, and the small formatters. The browser path is covered
// by tests/e2e/test_curbside.py.

import assert from "node:assert/strict";
import { test } from "node:test";

import { csvFilename } from "../src/pages/curbside-admin.js";
import { anyRinging, applyStatus, dueText, forPcp, parseStates, percent, ringsReducer, seconds } from "../src/curbside/status.js";

/** @param {number} id */
function ring(id, tier = "primary") {
  const request = { id, urgency: "urgent", mode: "call_now", question: "Q?", patient_state: "CA", context: {}, pcp: { id: 2, display_name: "Dr.Chen" }, asked_at: "2026-01-01T10:00:00+00:00" };
  return { type: /** @type {const} */ ("ring"), ring: { request, tier: /** @type {"primary" | "backup"} */ (tier), ring_deadline: null } };
}

/** @returns {import('../src/curbside/status.js').Consult} */
function consult(fields = {}) {
  return /** @type {any} */ ({ id: 7, status: "ringing", mode: "call_now", urgency: "urgent", consultant: null, ringing_tier: "primary", pcp: { id: 2, display_name: "Dr.Chen" }, ...fields });
}

test("a ring is listed once, and a repeated ring (a reconnect) replaces it", () => {
  let rings = ringsReducer([], ring(1));
  rings = ringsReducer(rings, ring(2));
  rings = ringsReducer(rings, ring(1, "backup"));
  assert.deepEqual(rings.map((r) => [r.request.id, r.tier, r.state]), [[2, "primary", "ringing"], [1, "backup", "ringing"]]);
});

test("taken, cancelled and escalated rings stay, saying why, until dismissed", () => {
  let rings = [ring(1), ring(2), ring(3)].reduce(ringsReducer, []);
  rings = ringsReducer(rings, { type: "taken", request_id: 1 });
  rings = ringsReducer(rings, { type: "stop", request_id: 2, reason: "cancelled" });
  rings = ringsReducer(rings, { type: "stop", request_id: 3, reason: "escalated" });
  assert.deepEqual(rings.map((r) => r.state), ["taken", "cancelled", "escalated"]);
  assert.equal(anyRinging(rings), false);
  rings = ringsReducer(rings, { type: "dismiss", request_id: 1 });
  assert.deepEqual(rings.map((r) => r.request.id), [2, 3]);
});

test("accepting stops the sound; a failed accept rings again; declining removes it", () => {
  let rings = ringsReducer([], ring(1));
  assert.equal(anyRinging(rings), true);
  rings = ringsReducer(rings, { type: "accepting", request_id: 1 });
  assert.equal(anyRinging(rings), false);
  rings = ringsReducer(rings, { type: "failed", request_id: 1 });
  assert.equal(anyRinging(rings), true);
  rings = ringsReducer(rings, { type: "declined", request_id: 1 });
  assert.deepEqual(rings, []);
  // Events about another request change nothing.
  assert.deepEqual(ringsReducer(ringsReducer([], ring(4)), { type: "taken", request_id: 9 })[0].state, "ringing");
});

test("a status event moves the PCP's view, and says when to read the request again", () => {
  const c = consult();
  const backup = applyStatus(c, { request_id: 7, status: "ringing", detail: "Ringing 1 backup on-call psychiatrist.", psychiatrist: null });
  assert.equal(backup.consult.ringing_tier, "backup");
  assert.equal(backup.stale, false);
  assert.equal(forPcp(backup.consult, backup.detail).title, "Ringing the backup psychiatrists");
  assert.equal(forPcp(backup.consult, backup.detail).text, "Ringing 1 backup on-call psychiatrist.");

  const accepted = applyStatus(c, { request_id: 7, status: "accepted", detail: "A psychiatrist accepted.", psychiatrist: { id: 5, display_name: "Dr.Ahmed" } });
  assert.equal(accepted.stale, true); // the call's visit id is read from the server
  assert.equal(accepted.consult.ringing_tier, null);
  assert.equal(forPcp(accepted.consult).title, "Accepted by Dr.Ahmed");

  const other = applyStatus(c, { request_id: 8, status: "cancelled", detail: "", psychiatrist: null });
  assert.equal(other.consult, c);
  assert.equal(other.stale, false);
});

test("a call nobody took is said plainly: it went to the written queue", () => {
  const said = forPcp(consult({ status: "queued_written", ringing_tier: null }));
  assert.equal(said.title, "No psychiatrist could take the call");
  assert.match(said.text, /moved to the written consult queue/);
  assert.match(forPcp(consult({ status: "queued_written", mode: "written" })).title, /Waiting for a written answer/);
});

test("due times, durations and shares read as people say them", () => {
  const now = Date.parse("2026-01-01T10:00:00Z");
  assert.equal(dueText("2026-01-01T13:20:00Z", now), "due in 3 h 20 min");
  assert.equal(dueText("2026-01-01T10:08:00Z", now), "due in 8 min");
  assert.equal(dueText("2026-01-01T09:35:00Z", now), "overdue by 25 min");
  assert.equal(dueText("2026-01-04T10:00:00Z", now), "due in 3 days");
  assert.equal(seconds(42.4), "42 s");
  assert.equal(seconds(185), "3 min 5 s");
  assert.equal(seconds(null), "—");
  assert.equal(percent(0.125), "13%");
  assert.equal(percent(null), "—");
});

test("licensed states: codes in any case and separator, unknown ones set apart", () => {
  assert.deepEqual(parseStates("ca, NY  tx;ca", ["CA", "NY", "TX"]), { states: ["CA", "NY", "TX"], unknown: [] });
  assert.deepEqual(parseStates("Narnia, ca", ["CA"]), { states: ["CA"], unknown: ["NARNIA"] });
  assert.deepEqual(parseStates("  ", ["CA"]), { states: [], unknown: [] });
});

test("the CSV is saved under the server's file name, or a plain one if that is missing or odd", () => {
  assert.equal(csvFilename('attachment; filename="curbside-consults-20240101-20240131.csv"'), "curbside-consults-20240101-20240131.csv");
  assert.equal(csvFilename(null), "curbside-report.csv");
  assert.equal(csvFilename('attachment; filename="../etc/x y.csv"'), "curbside-report.csv");
});
