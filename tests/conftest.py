"""Shared fixtures: warehouses on SQLite and PostgreSQL, and a small demo source."""

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ENV = "SYNC_TEST_POSTGRES_URL"


def _under_ci() -> bool:
    return os.getenv("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """The test PostgreSQL URL. Under CI a missing or unreachable server fails the test."""
    url = os.getenv(PG_ENV)
    if not url:
        if _under_ci():
            pytest.fail(f"{PG_ENV} is not set: PostgreSQL tests are required under CI")
        pytest.skip(f"{PG_ENV} not set")
    try:
        eng = sa.create_engine(url)
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001 - report any connection problem
        if _under_ci():
            pytest.fail(f"cannot connect to PostgreSQL at {PG_ENV}: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_base_url):
    """A URL whose connections use a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(postgres_base_url)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_base_url else "?"
    yield f"{postgres_base_url}{sep}options=-csearch_path%3D{schema}"
    with eng.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    return request.getfixturevalue("postgres_url")
