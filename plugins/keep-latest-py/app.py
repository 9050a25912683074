"""regsync tag filter in Python: keeps the newest `count` tags by semver order.

The same rules as the Rust keep-latest plugin: a leading `v` and missing
minor/patch numbers are accepted, tags that are not versions are dropped,
`prerelease: "false"` drops pre-releases. Settings: count (default 5),
prerelease (default "true").
"""

import re
from functools import cmp_to_key

from componentize_py_types import Err
from wit_world import exports

CORE = re.compile(r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z.-]+))?$")


def version_of(tag):
    m = CORE.match(tag)
    if not m:
        return None
    major, minor, patch, pre = m.groups()
    pre_parts = pre.split(".") if pre else []
    if any(p == "" for p in pre_parts):
        return None
    return (int(major), int(minor or 0), int(patch or 0), pre_parts)


def compare_pre(a, b):
    # Semver precedence: a release sorts above its pre-releases; numeric
    # identifiers compare as numbers and sort below alphanumeric ones.
    if not a or not b:
        return (not a) - (not b)
    for x, y in zip(a, b):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def compare(a, b):
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    return compare_pre(a[3], b[3])


def keep_latest(tags, count, prerelease):
    versions = [(version_of(t), t) for t in tags]
    versions = [(v, t) for v, t in versions if v is not None and (prerelease or not v[3])]
    # Newest first; the sort is stable, so ties keep their original order.
    versions.sort(key=cmp_to_key(lambda x, y: compare(y[0], x[0])))
    return [t for _, t in versions[:count]]


class TagFilter(exports.TagFilter):
    def filter_tags(self, repo, tags):
        from wit_world.imports import host

        raw = host.get_config("count") or "5"
        try:
            count = int(raw.strip())
        except ValueError:
            raise Err(f"count must be a whole number, got {raw!r}")
        prerelease = (host.get_config("prerelease") or "true").strip() != "false"
        return keep_latest(list(tags), count, prerelease)
