"""The demo platform's legal entities, currencies and customer countries.

``ENTITY_TABLE`` lists the twenty legal entities the generator can simulate, in order: a demo
with ``entities=n`` has the first ``n``. The first three (US01, UK01, DE01) are the default
demo's; their figures are the ones the generator has always used, so the default output does
not change when entities are added here (append only).

``setup(n)`` gathers the arrays the generator indexes: entity ``e`` has functional currency
``currency[e]`` (an index into ``currencies``), customers in ``home`` countries, and a
domestic tax rate for customers in its own country. Customers billed in a foreign currency
are billed in USD, GBP or EUR (``FOREIGN``): these three are always in ``currencies``, even
with one entity, so US01 alone still has GBP and EUR customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# entity_id, name, functional currency, country, ERP subsidiary, share weight of customers,
# domestic tax in basis points, ((customer country, probability), ...) of home customers
ENTITY_TABLE = (
    ("US01", "Demo Cloud Inc.", "USD", "US", "1", 0.5, 0, (("US", 0.95), ("CA", 0.05))),
    ("UK01", "Demo Cloud Ltd", "GBP", "GB", "2", 0.3, 2000, (("GB", 0.9), ("IE", 0.1))),
    ("DE01", "Demo Cloud GmbH", "EUR", "DE", "3", 0.2, 1900,
     (("DE", 0.75), ("FR", 0.1), ("NL", 0.1), ("AT", 0.05))),
    ("FR01", "Demo Cloud SAS", "EUR", "FR", "4", 0.12, 2000, (("FR", 0.85), ("BE", 0.15))),
    ("CA01", "Demo Cloud Canada Inc.", "CAD", "CA", "5", 0.1, 500, (("CA", 0.9), ("US", 0.1))),
    ("AU01", "Demo Cloud Pty Ltd", "AUD", "AU", "6", 0.08, 1000, (("AU", 0.85), ("NZ", 0.15))),
    ("JP01", "Demo Cloud K.K.", "JPY", "JP", "7", 0.1, 1000, (("JP", 0.95), ("SG", 0.05))),
    ("NL01", "Demo Cloud B.V.", "EUR", "NL", "8", 0.06, 2100, (("NL", 0.8), ("BE", 0.2))),
    ("SG01", "Demo Cloud Pte. Ltd.", "SGD", "SG", "9", 0.05, 900,
     (("SG", 0.8), ("AU", 0.1), ("IN", 0.1))),
    ("SE01", "Demo Cloud AB", "SEK", "SE", "10", 0.04, 2500,
     (("SE", 0.8), ("NO", 0.1), ("DK", 0.1))),
    ("CH01", "Demo Cloud Schweiz AG", "CHF", "CH", "11", 0.04, 810, (("CH", 0.9), ("AT", 0.1))),
    ("IE01", "Demo Cloud Ireland Ltd", "EUR", "IE", "12", 0.03, 2300, (("IE", 0.9), ("NL", 0.1))),
    ("ES01", "Demo Cloud S.L.", "EUR", "ES", "13", 0.04, 2100, (("ES", 0.9), ("FR", 0.1))),
    ("IT01", "Demo Cloud S.r.l.", "EUR", "IT", "14", 0.04, 2200, (("IT", 0.9), ("AT", 0.1))),
    ("BR01", "Demo Cloud Brasil Ltda.", "BRL", "BR", "15", 0.04, 0, (("BR", 0.9), ("MX", 0.1))),
    ("IN01", "Demo Cloud India Pvt Ltd", "INR", "IN", "16", 0.05, 1800,
     (("IN", 0.95), ("SG", 0.05))),
    ("MX01", "Demo Cloud Mexico S.A. de C.V.", "MXN", "MX", "17", 0.03, 1600,
     (("MX", 0.9), ("US", 0.1))),
    ("NZ01", "Demo Cloud NZ Ltd", "NZD", "NZ", "18", 0.02, 1500, (("NZ", 0.9), ("AU", 0.1))),
    ("DK01", "Demo Cloud ApS", "DKK", "DK", "19", 0.02, 2500,
     (("DK", 0.85), ("SE", 0.1), ("NO", 0.05))),
    ("PL01", "Demo Cloud sp. z o.o.", "PLN", "PL", "20", 0.02, 2300, (("PL", 0.9), ("BE", 0.1))),
)  # fmt: skip
MAX_ENTITIES = len(ENTITY_TABLE)
DEFAULT_ENTITIES = 3

# currency, USD per unit at the start, monthly unit price per tier in minor units (neighbouring
# tiers differ by at most 1.5x), Stripe's dispute fee in minor units; JPY has no minor unit
CURRENCY_TABLE = {
    "USD": (1.0, (1200, 1800, 2700, 4000), 1500),
    "GBP": (1.27, (1000, 1500, 2200, 3300), 1500),
    "EUR": (1.08, (1100, 1650, 2450, 3650), 1500),
    "CAD": (0.73, (1600, 2400, 3600, 5400), 1500),
    "AUD": (0.66, (1800, 2700, 4000, 6000), 2500),
    "JPY": (0.0067, (1800, 2700, 4000, 6000), 1500),
    "SGD": (0.74, (1600, 2400, 3600, 5400), 2000),
    "SEK": (0.095, (12900, 19300, 28900, 43300), 16000),
    "CHF": (1.13, (1100, 1650, 2450, 3650), 1500),
    "BRL": (0.18, (5900, 8850, 13250, 19850), 7500),
    "INR": (0.012, (99900, 149800, 224700, 337000), 125000),
    "MXN": (0.058, (19900, 29800, 44700, 67000), 25000),
    "NZD": (0.61, (1900, 2850, 4250, 6350), 2500),
    "DKK": (0.145, (8200, 12300, 18400, 27600), 10000),
    "PLN": (0.25, (4900, 7300, 10900, 16300), 6000),
}
FOREIGN = ("USD", "GBP", "EUR")  # the currencies customers are billed in besides the home one

# customer countries: ISO 3166 alpha-2, alpha-3 (for the bad-row that writes it), company
# name suffixes, and exclusive tax in basis points for a seller outside the country (GB 20 %
# VAT, DE 19 % VAT, other EU reverse charge, exports 0 %); a seller in the country charges
# its domestic rate. US 0 % except a subset of customers in 7 % sales-tax states.
COUNTRY_TABLE = (
    ("US", "USA", (", Inc.", " LLC"), 0),
    ("CA", "CAN", (" Inc.", " Inc."), 0),
    ("GB", "GBR", (" Ltd", " plc"), 2000),
    ("IE", "IRL", (" Ltd", " Ltd"), 0),
    ("DE", "DEU", (" GmbH", " AG"), 1900),
    ("FR", "FRA", (" SAS", " SARL"), 0),
    ("NL", "NLD", (" B.V.", " B.V."), 0),
    ("AT", "AUT", (" GmbH", " GmbH"), 0),
    ("AU", "AUS", (" Pty Ltd", " Pty Ltd"), 0),
    ("JP", "JPN", (" K.K.", " G.K."), 0),
    ("SG", "SGP", (" Pte. Ltd.", " Pte. Ltd."), 0),
    ("SE", "SWE", (" AB", " AB"), 0),
    ("CH", "CHE", (" AG", " GmbH"), 0),
    ("ES", "ESP", (" S.L.", " S.A."), 0),
    ("IT", "ITA", (" S.r.l.", " S.p.A."), 0),
    ("BR", "BRA", (" Ltda.", " S.A."), 0),
    ("IN", "IND", (" Pvt Ltd", " Ltd"), 0),
    ("MX", "MEX", (" S.A. de C.V.", " S. de R.L."), 0),
    ("NZ", "NZL", (" Ltd", " Limited"), 0),
    ("DK", "DNK", (" ApS", " A/S"), 0),
    ("PL", "POL", (" sp. z o.o.", " S.A."), 0),
    ("BE", "BEL", (" BV", " NV"), 0),
    ("NO", "NOR", (" AS", " ASA"), 0),
)
COUNTRIES = tuple(c[0] for c in COUNTRY_TABLE)
COUNTRY_ISO3 = {c[0]: c[1] for c in COUNTRY_TABLE}
SUFFIXES = tuple(c[2] for c in COUNTRY_TABLE)
TAX_BP = np.array([c[3] for c in COUNTRY_TABLE], dtype=np.int64)
US_TAXABLE_BP = 700
US_TAXABLE_SHARE = 0.3
NAME_A = (
    "Acme", "Blue", "Northwind", "Globex", "Initech", "Cedar", "Harbor", "Summit", "Quantum",
    "Pioneer", "Müller", "Öko", "Lumen", "Vertex", "Atlas", "Nimbus", "Falcon", "Orchid",
    "Granite", "Søren",
)  # fmt: skip
NAME_B = (
    "Labs", "Systems", "Analytics", "Foods", "Logistics", "Studio", "Works", "Partners",
    "Digital", "Energy", "Bau", "Health", "Media", "Robotics", "Retail",
)  # fmt: skip
_C = {c: i for i, c in enumerate(COUNTRIES)}
# (country index, probability) of customers billed in a foreign currency, by that currency
FOREIGN_COUNTRIES = (((_C["US"], 1.0),), ((_C["GB"], 1.0),),
                     ((_C["DE"], 0.5), (_C["FR"], 0.25), (_C["NL"], 0.25)))  # fmt: skip


@dataclass(frozen=True)
class Setup:
    """The first ``n`` legal entities as the arrays the generator indexes."""

    rows: tuple  # (entity_id, name, functional currency, country, ERP subsidiary)
    ids: np.ndarray  # entity_id per entity (object)
    share: np.ndarray  # probability of a customer's entity
    currency: np.ndarray  # functional currency index per entity
    country: np.ndarray  # country index per entity
    domestic_bp: np.ndarray  # tax for customers in the entity's country
    home: tuple  # per entity ((country index, probability), ...)
    currencies: tuple  # currency codes; FOREIGN first
    codes: np.ndarray  # the same as an object array
    usd_start: tuple  # USD per unit at the start, per currency
    prices: np.ndarray  # [currency, tier] monthly unit price in minor units
    dispute_fee: np.ndarray  # per currency, minor units

    @property
    def n(self) -> int:
        return len(self.rows)


def setup(n: int = DEFAULT_ENTITIES) -> Setup:
    if not 1 <= n <= MAX_ENTITIES:
        raise ValueError(f"entities must be between 1 and {MAX_ENTITIES}, got {n}")
    table = ENTITY_TABLE[:n]
    currencies = tuple(dict.fromkeys(FOREIGN + tuple(e[2] for e in table)))
    weights = np.array([e[5] for e in table])
    return Setup(
        rows=tuple(e[:5] for e in table),
        ids=np.array([e[0] for e in table], dtype=object),
        share=weights / weights.sum(),  # 0.5 + 0.3 + 0.2 is exactly 1.0
        currency=np.array([currencies.index(e[2]) for e in table], dtype=np.int64),
        country=np.array([_C[e[3]] for e in table], dtype=np.int64),
        domestic_bp=np.array([e[6] for e in table], dtype=np.int64),
        home=tuple(tuple((_C[c], p) for c, p in e[7]) for e in table),
        currencies=currencies,
        codes=np.array(currencies, dtype=object),
        usd_start=tuple(CURRENCY_TABLE[c][0] for c in currencies),
        prices=np.array([CURRENCY_TABLE[c][1] for c in currencies], dtype=np.int64),
        dispute_fee=np.array([CURRENCY_TABLE[c][2] for c in currencies], dtype=np.int64),
    )
