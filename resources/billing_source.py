"""The subscription-platform source resource: the file drop, or the seeded demo platform."""

import threading
from pathlib import Path

import dagster as dg
import pandas as pd

from sync_core import filedrop
from sync_core.stripe import landing

_CACHE: dict[tuple, pd.DataFrame] = {}
_CACHE_LOCK = threading.Lock()


def _fingerprint(folder: Path, object_name: str) -> tuple:
    files = filedrop.object_files(folder, object_name) if folder.is_dir() else []
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def read_cached(folder: Path, object_name: str) -> pd.DataFrame:
    """Parse an object's files once per content version (name, mtime, size) per process."""
    key = (str(folder.resolve()), object_name, _fingerprint(folder, object_name))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is None:
        hit = filedrop.read_object(folder, object_name)
        with _CACHE_LOCK:
            for k in [k for k in _CACHE if k[:2] == key[:2]]:
                del _CACHE[k]
            _CACHE[key] = hit
    return hit


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
        """Every record of an object, typed, with its accounting ``period``."""
        folder = self.folder()
        df = self._records(folder, object_name)
        if object_name == "legal_entities":
            return df
        header = None
        if object_name in filedrop.HEADER_OF:
            header_name = filedrop.HEADER_OF[object_name][0]
            header = filedrop.with_period(header_name, self._records(folder, header_name))
        return filedrop.with_period(object_name, df, header)

    def _records(self, folder: Path, object_name: str) -> pd.DataFrame:
        if self.kind != "stripe_mirror":
            return read_cached(folder, object_name)
        committed = landing.committed_batches(folder)  # before listing: complete batches only
        header = None
        if object_name in filedrop.HEADER_OF:
            header_name = filedrop.HEADER_OF[object_name][0]
            header = landing.latest_records(
                read_cached(folder, header_name), header_name, committed
            )
        return landing.latest_records(
            read_cached(folder, object_name), object_name, committed, header
        )

    def read_partition(
        self, object_name: str, entity_id: str, period: pd.Timestamp
    ) -> pd.DataFrame:
        df = self.read(object_name)
        mask = (df["entity_id"] == entity_id) & (df["period"] == period)
        return df[mask].reset_index(drop=True)
