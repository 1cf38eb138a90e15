"""Alert messages: Slack-compatible webhook payloads, built from plain values.

Every payload is ``{"text": <one line, for notifications>, "blocks": [...]}`` (Slack's
``section`` / ``context`` blocks with ``mrkdwn`` text; other chat tools that take Slack's
incoming-webhook format read ``text``). Three kinds:

- a failed run: job, run id, partition, trigger, the failure's message (shortened), a link
  to the run;
- a failed reconciliation check (``gl_equals_subledger``, ``postings_complete``): entity,
  period, check, severity, the drift (the ``drift_<account>`` metadata that is not zero and
  ``max_abs_drift_minor``) or the incomplete documents, a link to the asset;
- an owner's exception backlog: open exceptions above a count or older than N days, and
  those the replay gave up on (``sync_core.erp.replay_policy``).

:func:`redact` replaces any secret value that slipped into a text with ``[redacted]``; the
sender applies it to every payload. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sync_core.erp.replay_policy import GAVE_UP, schedule

ALERT_CHECKS = ("gl_equals_subledger", "postings_complete")
MAX_MESSAGE = 1500
# what a check evaluation's fingerprint is made of: the drift / the incomplete documents
_FINGERPRINT_KEYS = ("max_abs_drift_minor", "accounts_with_drift", "drift_rows",
                     "incomplete_documents", "by_reason", "documents")  # fmt: skip


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def payload(title: str, fields: list[tuple[str, object]], link: tuple[str, str] | None = None,
            body: str | None = None) -> dict:  # fmt: skip
    """A Slack-compatible message: the title, ``*name*: value`` fields, an optional body and
    a link (label, URL)."""
    lines = [f"*{name}*: {value}" for name, value in fields if value not in (None, "")]
    blocks = [_section(f"*{title}*"), _section("\n".join(lines))] if lines else [
        _section(f"*{title}*")]  # fmt: skip
    if body:
        blocks.append(_section(f"```{body}```"))
    if link:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"<{link[1]}|{link[0]}>"}]})  # fmt: skip
    summary = "; ".join(f"{n}: {v}" for n, v in fields[:4] if v not in (None, ""))
    return {"text": f"{title} ({summary})" if summary else title, "blocks": blocks}


def shorten(text: str | None, limit: int = MAX_MESSAGE) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def split_partition(partition: str | None) -> tuple[str | None, str | None]:
    """(entity, period ``YYYY-MM``) of a ``ENTITY|YYYY-MM-DD`` key."""
    if not partition or "|" not in partition:
        return None, None
    entity, period = partition.split("|", 1)
    return entity, period[:7]


def asset_url(ui_url: str, key_path: list[str]) -> str:
    return f"{ui_url.rstrip('/')}/assets/{'/'.join(key_path)}"


def run_failure_alert(job: str, run_id: str, message: str | None, tags: dict,
                      ui_url: str) -> dict:  # fmt: skip
    """The alert of a failed run."""
    partition = tags.get("dagster/partition")
    start = tags.get("dagster/asset_partition_range_start")
    if not partition and start:
        partition = f"{start}...{tags.get('dagster/asset_partition_range_end')}"
    return payload(
        f"Run failed: {job}",
        [("job", job), ("partition", partition), ("trigger", tags.get("sync/trigger", "operator")),
         ("run", run_id[:8])],
        ("Open the run in Dagster", f"{ui_url.rstrip('/')}/runs/{run_id}"),
        shorten(message) or None,
    )  # fmt: skip


def drift_summary(metadata: dict) -> tuple[str, dict[str, float]]:
    """(text, {account: drift}) of a ``gl_equals_subledger`` evaluation's metadata (plain
    values): the accounts whose drift is not zero, largest first."""
    drifts = {k[len("drift_"):]: float(v) for k, v in metadata.items()
              if k.startswith("drift_") and k != "drift_rows" and isinstance(v, int | float)
              and float(v) != 0.0}  # fmt: skip
    ordered = dict(sorted(drifts.items(), key=lambda kv: -abs(kv[1])))
    text = ", ".join(f"{a} {v:+,.2f}" for a, v in ordered.items()) or "none"
    return text, ordered


def check_failure_alert(asset_path: list[str], check: str, partition: str | None,
                        severity: str, metadata: dict, ui_url: str, run_id: str | None = None,
                        ) -> dict:  # fmt: skip
    """The alert of a failed check evaluation (``metadata`` as plain values)."""
    entity, period = split_partition(partition)
    fields: list[tuple[str, object]] = [("entity", entity), ("period", period),
                                        ("check", check), ("severity", severity)]  # fmt: skip
    if check == "gl_equals_subledger":
        text, _ = drift_summary(metadata)
        fields += [("drift (functional, major units)", text),
                   ("largest drift (minor units)", metadata.get("max_abs_drift_minor")),
                   ("accounts with drift", metadata.get("accounts_with_drift"))]  # fmt: skip
    elif check == "postings_complete":
        by_reason = metadata.get("by_reason") or {}
        fields += [("incomplete documents", metadata.get("incomplete_documents")),
                   ("by reason", ", ".join(f"{k}: {v}" for k, v in by_reason.items()))]  # fmt: skip
    if run_id:
        fields.append(("run", run_id[:8]))
    return payload(f"Check failed: {'/'.join(asset_path)} {check}", fields,
                   ("Open the asset in Dagster", asset_url(ui_url, asset_path)))  # fmt: skip


def check_key(asset_path: list[str], check: str, partition: str | None) -> str:
    """``<asset>|<check>|<partition>``: what a check failure is remembered under."""
    return f"{'/'.join(asset_path)}|{check}|{partition or ''}"


def check_fingerprint(passed: bool, severity: str, metadata: dict) -> str:
    """A short hash of (passed, severity, the drift / the incomplete documents) of an
    evaluation (``metadata`` as plain values): the same failure re-evaluated gives the same
    fingerprint, a changed drift another one."""
    facts = {k: v for k, v in metadata.items()
             if k in _FINGERPRINT_KEYS or (k.startswith("drift_") and not k.endswith("_display"))}  # fmt: skip
    text = json.dumps([bool(passed), severity, facts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def more_failures_alert(failures: list[tuple[list[str], str, str | None, str]],
                        ui_url: str) -> dict:  # fmt: skip
    """One message for the failures beyond a tick's per-message cap: ``and N more failing
    checks: ...`` (asset path, check, partition, severity each)."""
    lines = [f"{'/'.join(a)} {c} {p or '(unpartitioned)'} ({s})" for a, c, p, s in failures]
    title = f"and {len(failures)} more failing checks"
    message = payload(title, [("failing checks", len(failures))],
                      ("Open the asset in Dagster", asset_url(ui_url, failures[0][0])),
                      shorten("\n".join(lines)))  # fmt: skip
    message["text"] = shorten(f"{title}: {', '.join(lines)}", 600)
    return message


@dataclass(frozen=True)
class Backlog:
    """An owner's open exceptions: ``count``, ``oldest`` first seen, how many the replay gave
    up on, and the reasons (count per reason)."""

    owner: str
    count: int
    oldest_days: int
    gave_up: int
    reasons: dict[str, int]

    def key(self, max_open: int) -> str:
        """What the owner was last told: the count in steps of ``max_open``, the age in weeks,
        the given-up count. A new key is news."""
        return f"{self.count // max(max_open, 1)}|{self.oldest_days // 7}|{self.gave_up}"


def backlogs(rows: pd.DataFrame, now: datetime, max_open: int, max_age_days: int
             ) -> list[Backlog]:  # fmt: skip
    """Owners whose open exceptions exceed ``max_open``, are older than ``max_age_days``, or
    include rows the replay gave up on (the owner must be told)."""
    if rows.empty:
        return []
    first = pd.to_datetime(rows["first_seen"], utc=True)
    age = (pd.Timestamp(now) - first).dt.days
    replay = [schedule(r, o, a, s)[0] for r, o, a, s in
              zip(rows["reason_code"], rows["owner"], rows["attempts"], rows["last_seen"],
                  strict=True)]  # fmt: skip
    df = rows.assign(_age=age.to_numpy(), _gave_up=[x == GAVE_UP for x in replay])
    out = []
    for owner, g in df.groupby("owner", sort=True):
        b = Backlog(str(owner), len(g), int(g["_age"].max()), int(g["_gave_up"].sum()),
                    {str(k): int(v) for k, v in g["reason_code"].value_counts().items()})  # fmt: skip
        if b.count > max_open or b.oldest_days > max_age_days or b.gave_up:
            out.append(b)
    return out


def backlog_alert(b: Backlog, max_open: int, max_age_days: int, ui_url: str) -> dict:
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(b.reasons.items(), key=lambda kv: -kv[1]))
    return payload(
        f"Exception backlog for {b.owner}: {b.count} open",
        [("owner", b.owner), ("open", f"{b.count} (threshold {max_open})"),
         ("oldest", f"{b.oldest_days} days (threshold {max_age_days})"),
         ("no longer retried automatically", b.gave_up), ("by reason", reasons)],
        ("Open the exception queue in Dagster",
         asset_url(ui_url, ["posting_exception_queue"])),
    )  # fmt: skip


def redact(message: dict, secrets: list[str]) -> dict:
    """``message`` with every occurrence of a secret value replaced by ``[redacted]``."""
    text = json.dumps(message)
    for s in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        text = text.replace(json.dumps(s)[1:-1], "[redacted]")
    return json.loads(text)
