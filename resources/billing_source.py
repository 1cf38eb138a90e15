"""The subscription-platform source resource: the file drop, or the seeded demo platform.

Reading is parse-once: an object's files are parsed, its records given their accounting period
(and, for the Stripe mirror, reduced to the latest snapshot per id) once per content version,
and a partition is then a lookup (``filedrop.PartitionIndex``). The cache holds one version of
each object per folder, with no per-entity copies: a changed file (name, mtime or size), a
changed header file for a line object, or a newly committed mirror batch replaces it.
"""

import threading
from pathlib import Path

import dagster as dg
import pandas as pd

from sync_core import filedrop
from sync_core.stripe import landing

# (folder, "files" | "mirror", object) -> (content version, the object's records)
_CACHE: dict[tuple[str, str, str], tuple[tuple, filedrop.PartitionIndex]] = {}
_CACHE_LOCK = threading.Lock()


def _fingerprint(folder: Path, object_name: str) -> tuple:
    files = filedrop.object_files(folder, object_name) if folder.is_dir() else []
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def read_indexed(
    folder: Path, object_name: str, committed: frozenset[str] | None = None
) -> filedrop.PartitionIndex:
    """An object's records with their period, parsed once per content version per process.

    ``committed``: the Stripe mirror's committed batches (``landing.latest_records``); None for
    a plain file drop. A line object's version includes its header's files: its records take
    the period of their header document.
    """
    header_name = filedrop.HEADER_OF.get(object_name, (None,))[0]
    version = (
        _fingerprint(folder, object_name),
        _fingerprint(folder, header_name) if header_name else (),
        None if committed is None else tuple(sorted(committed)),
    )
    key = (str(folder.resolve()), "files" if committed is None else "mirror", object_name)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        _CACHE.pop(key, None)  # the old version goes before the new one is parsed
    header = read_indexed(folder, header_name, committed).frame if header_name else None
    records = filedrop.read_object(folder, object_name)
    if committed is not None:
        records = landing.latest_records(records, object_name, set(committed), header)
    if object_name != "legal_entities":
        records = filedrop.add_period(object_name, records, header)
    index = filedrop.PartitionIndex(records)
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if not Path(k[0]).is_dir()]:  # a folder since removed
            del _CACHE[k]
        _CACHE[key] = (version, index)
    return index


class BillingSourceResource(dg.ConfigurableResource):
    """Where billing data comes from.

    ``kind="file_drop"`` reads ``path`` (docs/data-contract.md, "File-drop format").
    ``kind="demo"`` is the same reader over a folder that the seeded demo platform writes on
    first use (``demo_subscriptions``, ``demo_seed``).
    ``kind="stripe_mirror"`` is the same reader over the Stripe mirror that the Stripe sensor
    and reconcile land into (``sync_core.stripe.landing``): batches of snapshots, of which
    the last record per source id wins (a document's lines: those of its latest header).
    """

    kind: str = "file_drop"
    path: str = ".local/source"
    demo_subscriptions: int = 300
    demo_seed: int = 7

    def folder(self) -> Path:
        folder = Path(self.path)
        if self.kind == "demo":
            if not (folder / "legal_entities.csv").exists():
                from sync_core.demo.generator import generate

                generate(folder, subscriptions=self.demo_subscriptions, seed=self.demo_seed)
        elif self.kind not in ("file_drop", "stripe_mirror"):
            raise ValueError(
                f"unknown billing source kind {self.kind!r} (file_drop, demo or stripe_mirror)"
            )
        if not folder.is_dir():
            raise FileNotFoundError(f"billing source folder {folder} does not exist")
        return folder

    def read(self, object_name: str) -> pd.DataFrame:
        """Every record of an object, typed, with its accounting ``period`` (a copy)."""
        return self._indexed(object_name).frame.copy()

    def read_partition(
        self, object_name: str, entity_id: str, period: pd.Timestamp
    ) -> pd.DataFrame:
        """The records of one entity x period (those of :meth:`read` there), by lookup."""
        return self._indexed(object_name).partition(entity_id, period)

    def _indexed(self, object_name: str) -> filedrop.PartitionIndex:
        folder = self.folder()
        if self.kind != "stripe_mirror":
            return read_indexed(folder, object_name)
        committed = landing.committed_batches(folder)  # before listing: complete batches only
        return read_indexed(folder, object_name, frozenset(committed))
