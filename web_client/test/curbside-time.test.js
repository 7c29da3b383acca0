// Unit tests of the written answer's "Minutes spent" (src/curbside/answer-time.js): the minutes
// offered for the time measured, and what the psychiatrist may type. The browser path is
// covered by tests/e2e/test_curbside.py; the server checks the figure again.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_MINUTES, PLAUSIBLE_SITTING_S, parseMinutes, suggestedMinutes } from "../src/curbside/answer-time.js";

test("the minutes offered are the time measured, rounded, at least 1 and at most the cap", () => {
  assert.equal(suggestedMinutes(0, MAX_MINUTES), 1);
  assert.equal(suggestedMinutes(89, MAX_MINUTES), 1);
  assert.equal(suggestedMinutes(90, MAX_MINUTES), 2);
  assert.equal(suggestedMinutes(9 * 60, MAX_MINUTES), 9);
  assert.equal(suggestedMinutes(PLAUSIBLE_SITTING_S, MAX_MINUTES), 60);
  // The server's limit for this request (minutes since it was asked) caps the offer too.
  assert.equal(suggestedMinutes(30 * 60, 12), 12);
});

test("no minutes are offered for a time too long for one sitting (back after lunch, next day)", () => {
  assert.equal(suggestedMinutes(PLAUSIBLE_SITTING_S + 1, MAX_MINUTES), null);
  assert.equal(suggestedMinutes(3 * 3600, MAX_MINUTES), null);
  assert.equal(suggestedMinutes(2 * 86_400, MAX_MINUTES), null);
});

test("the limit is the server's for this request, and unreadable text is not 'nothing typed'", () => {
  assert.deepEqual(parseMinutes("12", 12), { minutes: 12, error: null });
  assert.equal(parseMinutes("13", 12).error, "Give the minutes as a whole number from 1 to 12.");
  assert.equal(parseMinutes("", MAX_MINUTES, true).error, `Give the minutes as a whole number from 1 to ${MAX_MINUTES}.`);
});

test("a whole number of minutes within range is taken, anything else says what is wrong", () => {
  assert.deepEqual(parseMinutes(" 12 "), { minutes: 12, error: null });
  assert.deepEqual(parseMinutes(String(MAX_MINUTES)), { minutes: MAX_MINUTES, error: null });
  assert.equal(parseMinutes("").error, "Say how many minutes you spent on this consult.");
  for (const text of ["0", "-5", "12.5", "1e2", "ten", String(MAX_MINUTES + 1)]) {
    assert.equal(parseMinutes(text).minutes, null, text);
    assert.match(String(parseMinutes(text).error), /whole number from 1 to 240/, text);
  }
});
