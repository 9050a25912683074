"""regsync notifier: POSTs each sync event as JSON to a webhook.

Settings (the `config:` map of the plugin's entry):
  url     where to POST (its host:port must be in the entry's allowHosts)
  events  comma-separated event kinds to send
          (default: image-copied,sync-finished,sync-failed)

The body is one JSON object per event:
  {"event": "image-copied", "source": ..., "target": ..., "repo": ...,
   "tags": [...], "digest": ..., "error": ..., "durationMs": ...,
   "details": {"step": "0", ...}}
Event kinds this plugin does not know (from a newer regsync) are sent like
the others when `events` names them.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.notifier import SyncEvent
from wit_world.imports import host, outbound_http

DEFAULT_EVENTS = "image-copied,sync-finished,sync-failed"


def to_json(event: SyncEvent) -> str:
    return json.dumps(
        {
            "event": event.kind,
            "source": event.source,
            "target": event.target,
            "repo": event.repo,
            "tags": list(event.tags),
            "digest": event.digest,
            "error": event.error,
            "durationMs": event.duration_ms,
            "details": dict(event.details),
        },
        sort_keys=True,
    )


class Notifier(exports.Notifier):
    def notify(self, event: SyncEvent) -> None:
        url = host.get_config("url")
        if not url:
            raise Err("webhook: set config.url")
        wanted = (host.get_config("events") or DEFAULT_EVENTS).split(",")
        if event.kind not in [w.strip() for w in wanted]:
            return
        status = outbound_http.post(url, "application/json", to_json(event))
        if status >= 300:
            raise Err(f"webhook: {url} answered HTTP {status}")
        host.log(host.Level.DEBUG, f"posted {event.kind} to {url}")
