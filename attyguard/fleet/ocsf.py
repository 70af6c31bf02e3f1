"""A daemon record -> one OCSF 1.3 event (pure; the mapping table is docs/ocsf.md).

The daemon records what it decided with `DaemonServer.record(kind, **fields)`;
every record a fleet should see maps here:

- an allowed line or exec (`verdict`/`exec` with action allow) -> Process
  Activity (class 1007), activity Launch, action Allowed;
- a warned or refused line or exec, a warn event, a threat mark, a SEC-002
  violation -> Detection Finding (class 2004), activity Create, with the rules
  as the finding's analytics and the process as evidence;
- a mark cleared by root -> Detection Finding, activity Close.

Fields a record lacks are left out, never invented. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["OCSF_VERSION", "Product", "to_ocsf"]

OCSF_VERSION = "1.3.0"

# OCSF severity_id (Informational 1 … Critical 5) from attyguard's words.
_SEVERITY = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
# attyguard action -> (OCSF action_id, action, disposition_id, disposition)
_ACTION = {
    "allow": (1, "Allowed", 1, "Allowed"),
    "warn": (1, "Allowed", 17, "Logged"),  # a warn runs after a question, or is only logged
    "block": (2, "Denied", 2, "Blocked"),
    # SEC-002 violations' actions
    "blocked": (2, "Denied", 2, "Blocked"),
    "alerted": (1, "Allowed", 17, "Logged"),
    "logged": (1, "Allowed", 17, "Logged"),
}
_PROCESS_ACTIVITY = (1, "System Activity", 1007, "Process Activity")
_DETECTION_FINDING = (2, "Findings", 2004, "Detection Finding")


class Product:
    def __init__(self, version: str, hostname: str) -> None:
        self.version = version
        self.hostname = hostname


def _severity(record: Mapping[str, Any], default: int) -> int:
    word = str(record.get("severity", "")).lower()
    if word in _SEVERITY:
        return _SEVERITY[word]
    level = str(record.get("level", "")).lower()  # threat marks: none/low/medium/high/critical
    return _SEVERITY.get(level, default)


def _process(record: Mapping[str, Any]) -> dict[str, Any]:
    process: dict[str, Any] = {}
    if isinstance(record.get("pid"), int):
        process["pid"] = record["pid"]
    argv = record.get("argv")
    line = record.get("line")
    if isinstance(argv, list) and argv:
        process["cmd_line"] = " ".join(str(a) for a in argv)
    elif isinstance(line, str):
        process["cmd_line"] = line
    program = record.get("program") or record.get("exe")
    if isinstance(program, str) and program:
        process["file"] = {"path": program, "name": program.rsplit("/", 1)[-1]}
    if isinstance(record.get("uid"), int):
        process["user"] = {"uid": str(record["uid"])}
    if isinstance(record.get("ppid"), int):
        process["parent_process"] = {"pid": record["ppid"]}
    return process


def _header(category: tuple[int, str, int, str], activity_id: int, activity: str,
            severity_id: int, time_ms: int, product: Product, uid: str) -> dict[str, Any]:
    cat_uid, cat_name, class_uid, class_name = category
    return {
        "category_uid": cat_uid,
        "category_name": cat_name,
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity}",
        "severity_id": severity_id,
        "severity": _SEVERITY_NAME[severity_id],
        "time": time_ms,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "product": {"name": "attyguard", "vendor_name": "attyguard",
                        "version": product.version},
        },
        "device": {"hostname": product.hostname, "type_id": 0, "type": "Unknown"},
    }


def to_ocsf(kind: str, record: Mapping[str, Any], product: Product) -> dict[str, Any] | None:
    """The OCSF event for one daemon record, or None for kinds a fleet need not see."""
    time_ms = int(float(record.get("time", 0)) * 1000)
    # A stable id per record, so a pipeline that receives it twice can drop the copy.
    uid = hashlib.sha256(json.dumps([kind, record], sort_keys=True, default=str)
                         .encode()).hexdigest()[:32]
    action = str(record.get("action", "")).lower()
    rules = [str(r) for r in record.get("rules", ()) if isinstance(r, str)]
    process = _process(record)

    if kind in ("verdict", "exec") and action in ("allow", ""):
        event = _header(_PROCESS_ACTIVITY, 1, "Launch", 1, time_ms, product, uid)
        event["process"] = process
        event["action_id"], event["action"], event["disposition_id"], event["disposition"] = \
            _ACTION["allow"]
        if kind == "exec" and record.get("rung"):
            event["unmapped"] = {"rung": record["rung"]}
        return event

    if kind in ("verdict", "exec", "event", "mark", "violation"):
        default = {"block": 4, "blocked": 4, "warn": 3}.get(action, 3)
        severity_id = _severity(record, default)
        event = _header(_DETECTION_FINDING, 1, "Create", severity_id, time_ms, product, uid)
        title = str(record.get("reason") or record.get("text") or record.get("detail")
                    or kind)
        finding: dict[str, Any] = {"uid": uid, "title": title[:500],
                                   "types": [_FINDING_TYPE.get(kind, kind)]}
        if rules:
            finding["analytic"] = {"uid": rules[0], "name": rules[0], "type_id": 1,
                                   "type": "Rule"}
            if len(rules) > 1:
                finding["related_analytics"] = [
                    {"uid": r, "name": r, "type_id": 1, "type": "Rule"} for r in rules[1:]]
        event["finding_info"] = finding
        if process:
            event["evidences"] = [{"process": process}]
        act = _ACTION.get(action, _ACTION["warn"])
        event["action_id"], event["action"], event["disposition_id"], event["disposition"] = act
        event["status_id"], event["status"] = 1, "New"
        extra = {k: record[k] for k in ("mode", "rung", "type", "level", "process", "probability")
                 if k in record}
        if extra:
            event["unmapped"] = extra
        return event

    if kind == "clear":
        event = _header(_DETECTION_FINDING, 3, "Close", 1, time_ms, product, uid)
        event["finding_info"] = {"uid": uid, "title": "threat mark cleared by root",
                                 "types": ["threat mark"]}
        if process:
            event["evidences"] = [{"process": process}]
        event["status_id"], event["status"] = 4, "Resolved"
        return event
    return None


_FINDING_TYPE = {
    "verdict": "command line",
    "exec": "exec",
    "event": "warn event",
    "mark": "threat mark",
    "violation": "runtime policy violation",
}
