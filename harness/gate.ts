// Suites that need something from the machine (root, a binary, qemu, docker, a native module) skip
// on a developer's machine without it — but under CI (`CI` set, as .ci/run does) a skip would hide
// a hole in the run, so there a missing prerequisite is a failing test that names it.
import { describe, test } from "bun:test";

/** CI is set to anything but "", "0" or "false". */
export function underCi(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

function missing(what: string): Error {
  return new Error(`prerequisite missing: ${what} (CI is set: a suite may not skip; .ci/run installs it as root)`);
}

/**
 * `describe(name, fn)` when `skipReason` is null. Otherwise the suite is skipped, or, under CI,
 * replaced by one failing test "prerequisite missing: <skipReason>".
 */
export function describeOrSkip(skipReason: string | null, name: string, fn: () => void): void {
  if (skipReason === null) {
    describe(name, fn);
  } else if (underCi()) {
    describe(name, () => {
      test(`prerequisite missing: ${skipReason}`, () => {
        throw missing(skipReason);
      });
    });
  } else {
    console.log(`SKIP ${name}: ${skipReason}`);
    describe.skip(name, fn);
  }
}

/** `test` when `skipReason` is null; otherwise `test.skip`, or under CI a test that fails naming it. */
export function testOrSkip(
  skipReason: string | null,
): (name: string, fn: () => void | Promise<void>, timeoutMs?: number) => void {
  if (skipReason === null) return (name, fn, timeoutMs) => test(name, fn, timeoutMs);
  if (underCi())
    return (name) =>
      test(`${name} (prerequisite missing: ${skipReason})`, () => {
        throw missing(skipReason);
      });
  return (name, fn) => test.skip(name, fn);
}

/**
 * Path of a tool a test uses for an extra check when present (null: the check is left out). Under CI
 * the tool must be there: throws naming it, which fails the calling test.
 */
export function optionalTool(bin: string): string | null {
  const path = Bun.which(bin);
  if (path === null && underCi()) throw missing(bin);
  return path;
}
