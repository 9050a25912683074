// regsync tag filter in JavaScript: keeps the newest `count` tags by semver
// order, with the same rules as the Rust and Python keep-latest plugins: a
// leading `v` and missing minor/patch numbers are accepted, tags that are not
// versions are dropped, `prerelease: "false"` drops pre-releases.
// Settings: count (default 5), prerelease (default "true").

import { getConfig, log } from "regsync:plugin/host@0.2.0";

const CORE = /^v?(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?(?:-([0-9A-Za-z.-]+))?$/;

// Numbers as digit strings, compared by length then digits: no precision
// limit, as the Rust plugin's u64 and Python's int have none in practice.
function compareNumbers(a, b) {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function versionOf(tag) {
  const m = CORE.exec(tag);
  if (!m) return null;
  const pre = m[4] ? m[4].split(".") : [];
  if (pre.some((p) => p === "")) return null;
  return { core: [m[1], m[2] || "0", m[3] || "0"], pre };
}

function comparePre(a, b) {
  // A release sorts above its pre-releases; numeric identifiers compare as
  // numbers and sort below alphanumeric ones.
  if (a.length === 0 || b.length === 0) return (a.length === 0) - (b.length === 0);
  const digits = /^[0-9]+$/;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i], b[i]];
    if (x === y) continue;
    const [dx, dy] = [digits.test(x), digits.test(y)];
    if (dx && dy) return compareNumbers(x, y);
    if (dx !== dy) return dx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return (a.length > b.length) - (a.length < b.length);
}

function compare(a, b) {
  for (let i = 0; i < 3; i++) {
    const c = compareNumbers(a.core[i], b.core[i]);
    if (c !== 0) return c;
  }
  return comparePre(a.pre, b.pre);
}

export function keepLatest(tags, count, prerelease) {
  const versions = [];
  tags.forEach((tag, index) => {
    const v = versionOf(tag);
    if (v && (prerelease || v.pre.length === 0)) versions.push({ v, tag, index });
  });
  // Newest first; ties keep their original order.
  versions.sort((x, y) => compare(y.v, x.v) || x.index - y.index);
  return versions.slice(0, count).map((e) => e.tag);
}

export const tagFilter = {
  filterTags(repo, tags) {
    const raw = getConfig("count") ?? "5";
    if (!/^\s*[0-9]+\s*$/.test(raw)) {
      throw `count must be a whole number, got "${raw}"`;
    }
    const prerelease = (getConfig("prerelease") ?? "true").trim() !== "false";
    const kept = keepLatest(tags, parseInt(raw.trim(), 10), prerelease);
    log("debug", `${repo}: keeping ${kept.join(", ")}`);
    return kept;
  },
};
