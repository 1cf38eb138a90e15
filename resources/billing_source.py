"""The subscription-platform source resource: the file drop, or the seeded demo platform.

Reading is parse-once: an object's files are parsed (a file drop in chunks of ``CHUNK_ROWS``
records), its records given their accounting period (and, for the Stripe mirror, reduced to
the latest snapshot per id) once per content version, and spilled to a temporary folder, one
file per legal entity (:class:`SpilledObject`). A partition is then a lookup in its entity's
records, the only ones of that object in memory; a run of one entity never holds another's.
The cache holds one version of each object per folder: a changed file (name, mtime or size),
a changed header file for a line object, or a newly committed mirror batch replaces it.
"""

import pickle
import shutil
import tempfile
import threading
from pathlib import Path

import dagster as dg
import pandas as pd

from sync_core import filedrop
from sync_core.stripe import landing

CHUNK_ROWS = 200_000  # records of a file parsed and typed at once
_NO_ENTITY = "\0no-entity"  # the spill file of records without an entity id


class SpilledObject:
    """An object's records with their period, spilled to disk one file per legal entity: the
    partitions of a read are lookups in their entity's records, loaded for that read and let
    go after it (:class:`filedrop.PartitionIndex`). Memory holds one entity's records of one
    object while a read runs, and none between reads."""

    def __init__(self, folder: Path, empty: pd.DataFrame, entities: dict[str, Path]):
        self.folder, self.empty, self.entities = folder, empty, entities

    @classmethod
    def spill(cls, chunks, folder: Path) -> "SpilledObject":
        """Write typed chunks (with ``period``) to ``folder``, by entity, in record order."""
        folder.mkdir(parents=True)
        files: dict[str, Path] = {}
        empty, offset = None, 0
        for chunk in chunks:
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))  # the record's position
            offset += len(chunk)
            empty = chunk.iloc[:0] if empty is None else empty
            ids = chunk["entity_id"].where(chunk["entity_id"].notna(), _NO_ENTITY).astype(str)
            for entity, rows in ids.groupby(ids, sort=False).indices.items():
                path = files.setdefault(entity, folder / f"{len(files)}.pkl")
                with path.open("ab") as f:
                    pickle.dump(chunk.iloc[rows], f, protocol=pickle.HIGHEST_PROTOCOL)
        return cls(folder, empty, files)

    def _records(self, entity: str) -> pd.DataFrame:
        path = self.entities.get(entity)
        if path is None:
            return self.empty
        parts = []
        with path.open("rb") as f:
            while True:
                try:
                    parts.append(pickle.load(f))
                except EOFError:
                    break
        return pd.concat(parts) if len(parts) > 1 else parts[0]

    @property
    def frame(self) -> pd.DataFrame:
        """Every record, in file order (each read builds it: a full copy)."""
        parts = [self._records(e) for e in self.entities] or [self.empty]
        return pd.concat(parts).sort_index().reset_index(drop=True)

    def columns(self, *names: str) -> pd.DataFrame:
        """Some columns of every record (what a line object needs of its header)."""
        parts = [self._records(e)[list(names)] for e in self.entities]
        return pd.concat(parts or [self.empty[list(names)]], ignore_index=True)

    def partitions(self, keys) -> list[pd.DataFrame]:
        """The records of each (entity, period) in ``keys``, in that order: each entity's
        records are loaded once for all its periods and let go before the next entity's."""
        out: dict[int, pd.DataFrame] = {}
        by_entity: dict = {}
        for i, (entity_id, period) in enumerate(keys):
            by_entity.setdefault(entity_id, []).append((i, period))
        for entity_id, wanted in by_entity.items():
            records = self._records(entity_id) if isinstance(entity_id, str) else self.frame
            index = filedrop.PartitionIndex(records.reset_index(drop=True))
            for i, period in wanted:
                out[i] = index.partition(entity_id, period)
            del index, records
        return [out[i] for i in range(len(keys))]

    def drop(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# (folder, "files" | "mirror", object) -> (content version, the object's records)
_CACHE: dict[tuple[str, str, str], tuple[tuple, SpilledObject]] = {}
_CACHE_LOCK = threading.Lock()
_SPILL: list[tempfile.TemporaryDirectory] = []  # removed when the process exits


def _spill_folder(object_name: str) -> Path:
    with _CACHE_LOCK:
        if not _SPILL:
            _SPILL.append(tempfile.TemporaryDirectory(prefix="billing-source-"))
        return Path(tempfile.mkdtemp(prefix=f"{object_name}-", dir=_SPILL[0].name)) / "spill"


def _fingerprint(folder: Path, object_name: str) -> tuple:
    files = filedrop.object_files(folder, object_name) if folder.is_dir() else []
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def _chunks(folder: Path, object_name: str, committed, header: pd.DataFrame | None):
    """The object's typed records with their period, a chunk at a time for a file drop;
    the mirror's latest snapshots need every record at once."""
    if committed is not None:
        records = filedrop.read_object(folder, object_name)
        records = landing.latest_records(records, object_name, set(committed), header)
        yield filedrop.add_period(object_name, records, header)
        return
    for chunk in filedrop.iter_object(folder, object_name, CHUNK_ROWS):
        yield filedrop.add_period(object_name, chunk, header)


def read_indexed(
    folder: Path, object_name: str, committed: frozenset[str] | None = None
) -> SpilledObject:
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
        old = _CACHE.pop(key, None)  # the old version goes before the new one is parsed
    if old is not None:
        old[1].drop()
    header = None
    if header_name:
        _, _, hkey = filedrop.HEADER_OF[object_name]
        spilled = read_indexed(folder, header_name, committed)
        # what the lines take of their header: its id and period (the mirror: every column)
        header = spilled.frame if committed is not None else spilled.columns(hkey, "period")
    if object_name == "legal_entities":
        records = SpilledObject.spill(filedrop.iter_object(folder, object_name),
                                      _spill_folder(object_name))  # fmt: skip
    else:
        records = SpilledObject.spill(_chunks(folder, object_name, committed, header),
                                      _spill_folder(object_name))  # fmt: skip
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if not Path(k[0]).is_dir()]:  # a folder since removed
            _CACHE.pop(k)[1].drop()
        _CACHE[key] = (version, records)
    return records


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
        return self._indexed(object_name).frame

    def read_partition(
        self, object_name: str, entity_id: str, period: pd.Timestamp
    ) -> pd.DataFrame:
        """The records of one entity x period (those of :meth:`read` there), by lookup."""
        return self.read_partitions(object_name, [(entity_id, period)])[0]

    def read_partitions(self, object_name: str, keys) -> list[pd.DataFrame]:
        """:meth:`read_partition` of each (entity, period) of ``keys``, an entity's records
        loaded once for all its periods."""
        return self._indexed(object_name).partitions(list(keys))

    def _indexed(self, object_name: str) -> SpilledObject:
        folder = self.folder()
        if self.kind != "stripe_mirror":
            return read_indexed(folder, object_name)
        committed = landing.committed_batches(folder)  # before listing: complete batches only
        return read_indexed(folder, object_name, frozenset(committed))
