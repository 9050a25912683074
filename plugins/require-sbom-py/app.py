"""regsync gate in Python: denies images that have no SBOM among their referrers.

A referrer counts when its payload is an SPDX or CycloneDX document: the
referrer's artifactType (or its layer's media type) says SPDX or CycloneDX,
and its first layer, read through the host and parsed as JSON, has
`spdxVersion` or `"bomFormat": "CycloneDX"`. A listing alone is not trusted:
anyone can push a referrer with the right artifactType and any content.

Settings: max-bytes, the most bytes read per SBOM (default 4194304).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.gate import Decision_Allow, Decision_Deny
from wit_world.imports import host, image_reader

SBOM_TYPES = ("spdx", "cyclonedx")


def looks_like_sbom(kind):
    kind = (kind or "").lower()
    return any(t in kind for t in SBOM_TYPES)


def sbom_format(document):
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("spdxVersion"), str):
        return "SPDX"
    if document.get("bomFormat") == "CycloneDX":
        return "CycloneDX"
    return None


class Gate(exports.Gate):
    def decide(self, facts):
        raw = host.get_config("max-bytes") or "4194304"
        try:
            limit = int(raw.strip())
        except ValueError:
            return Decision_Deny(f"max-bytes must be a whole number, got {raw!r}")
        problems = []
        for referrer in facts.referrers:
            if not looks_like_sbom(referrer.artifact_type):
                continue
            try:
                manifest = json.loads(image_reader.read_referrer(referrer.digest, None, 1 << 20))
                layers = manifest.get("layers") or []
                if not layers:
                    problems.append(f"{referrer.digest} has no layers")
                    continue
                payload = image_reader.read_referrer(referrer.digest, 0, limit)
                found = sbom_format(json.loads(payload))
            except Err as e:
                problems.append(f"{referrer.digest}: {e.value}")
                continue
            except ValueError as e:
                problems.append(f"{referrer.digest} is not JSON: {e}")
                continue
            if found:
                host.log(host.Level.DEBUG, f"{facts.source}: {found} SBOM {referrer.digest}")
                return Decision_Allow()
            problems.append(f"{referrer.digest} is neither SPDX nor CycloneDX")
        reason = "no SPDX or CycloneDX SBOM among its referrers"
        if problems:
            reason += " (" + "; ".join(problems) + ")"
        return Decision_Deny(reason)
