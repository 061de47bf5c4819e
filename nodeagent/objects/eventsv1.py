"""events.k8s.io/v1 Event: the core Event under the names the newer API gives its fields.

There is one store of events, as in Kubernetes: an events.k8s.io Event is kept as a
core/v1 Event and converted on its way in and out, so that either API sees every event
(kubectl describe reads core; client-go's newer recorder writes events.k8s.io).  The two
shapes hold the same fields, so the conversion loses nothing either way.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic.alias_generators import to_camel

from nodeagent.objects.cluster import Event as CoreEvent
from nodeagent.objects.cluster import EventSource, event_errors
from nodeagent.objects.meta import Model, ObjectMeta, ObjectReference
from nodeagent.objects.validation import FieldError, Path

__all__ = ["FIELD_SELECTOR_NAMES", "Event", "from_core", "to_core"]

# events.k8s.io name -> core name; the fields not named here are the same in both.
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_CORE_NAMES = {core: v1 for v1, core in _RENAMED.items()}

# The field selectors events.k8s.io serves, by the core field each reads.
FIELD_SELECTOR_NAMES = {
    **{f"regarding.{f}": f"involvedObject.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reportingController": "reportingComponent",
}


class EventSeries(Model):
    count: int | None = None
    last_observed_time: str | None = None


class Event(Model):
    """An event about an object: what a controller did (action) and why (reason)."""

    api_version: Literal["events.k8s.io/v1"] = "events.k8s.io/v1"
    kind: Literal["Event"] = "Event"
    metadata: ObjectMeta
    event_time: str | None = None
    series: EventSeries | None = None
    reporting_controller: str | None = None
    reporting_instance: str | None = None
    action: str | None = None
    reason: str | None = None
    regarding: ObjectReference | None = None
    related: ObjectReference | None = None
    note: str | None = None
    type: str | None = None
    deprecated_source: EventSource | None = None
    deprecated_first_timestamp: str | None = None
    deprecated_last_timestamp: str | None = None
    deprecated_count: int | None = None

    def check(self) -> list[FieldError]:
        """What every event keeps, created or updated (the core API's rules too)."""
        core = CoreEvent.model_validate(to_core(self.dump()))
        return event_errors(core, "regarding", "reportingController", "note")

    def check_create(self) -> list[FieldError]:
        """Kubernetes' rules for an event created through events.k8s.io: a new-style
        event, so it says when and of what type, and leaves the deprecated fields unset."""
        errs: list[FieldError] = []
        if not self.event_time:
            errs.append(Path("eventTime").required())
        if self.type not in ("Normal", "Warning"):
            errs.append(Path("type").invalid(self.type or "",
                                             f"has invalid value: {self.type or ''}"))
        errs += self._series_errors()
        for name, value in (("deprecatedFirstTimestamp", self.deprecated_first_timestamp),
                            ("deprecatedLastTimestamp", self.deprecated_last_timestamp),
                            ("deprecatedCount", self.deprecated_count),
                            ("deprecatedSource", self.deprecated_source and (
                                self.deprecated_source.component or
                                self.deprecated_source.host))):
            if value:
                errs.append(Path(name).invalid(value, "needs to be unset"))
        return errs

    def check_update(self, old: Event) -> list[FieldError]:
        """Once written, an event changes only its note, series and counts."""
        errs = self._series_errors() if self.series != old.series else []
        for name in ("regarding", "reason", "type", "action", "reporting_controller",
                     "reporting_instance", "event_time", "related", "deprecated_source",
                     "deprecated_first_timestamp"):
            if getattr(self, name) != getattr(old, name):
                errs.append(Path(to_camel(name)).invalid(
                    getattr(self, name), "field is immutable"))
        return errs

    def _series_errors(self) -> list[FieldError]:
        if self.series is None:
            return []
        errs = []
        if (self.series.count or 0) < 2:
            errs.append(Path("series").child("count").invalid(self.series.count,
                                                              "should be at least 2"))
        if not self.series.last_observed_time:
            errs.append(Path("series").child("lastObservedTime").required())
        return errs


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event (a JSON object) as the core/v1 Event it is stored as."""
    out = {_RENAMED.get(k, k): v for k, v in event.items()}
    out["apiVersion"] = "v1"
    out.setdefault("involvedObject", {})
    return out


def from_core(event: dict[str, Any]) -> dict[str, Any]:
    """A stored core/v1 Event as events.k8s.io/v1 shows it."""
    out = {_CORE_NAMES.get(k, k): v for k, v in event.items()}
    out["apiVersion"] = "events.k8s.io/v1"
    if out.get("regarding") == {}:
        del out["regarding"]
    return out
