"""The sample sales database: customers, products and sales, generated deterministically.

One source of rows for every database: ``sample_rows`` draws them from a fixed seed, ``METADATA`` declares
the tables with SQLAlchemy Core so SQLite and PostgreSQL both get proper types, and ``load_sample_data``
writes them through any SQLAlchemy connection. Nothing depends on the clock: same rows, every time.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    create_engine,
)

SEED = 20250101
# Bump when the rows change, so cached copies (``sample-v<N>.db``) are rebuilt.
VERSION = 1
REGIONS = ("North America", "Europe", "Asia Pacific", "Latin America")
SEGMENTS = ("Consumer", "Small Business", "Enterprise")
FIRST_ORDER, LAST_ORDER = date(2025, 1, 1), date(2026, 12, 31)
CUSTOMER_COUNT, SALES_COUNT = 300, 4000

METADATA = MetaData()
CUSTOMERS = Table(
    "customers",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("segment", Text, nullable=False),
    Column("created_at", Date, nullable=False),
)
PRODUCTS = Table(
    "products",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
)
SALES = Table(
    "sales",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("order_date", Date, nullable=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("amount", Numeric(12, 2), nullable=False),
    Index("sales_order_date", "order_date"),
)

_CATALOG = {
    "Laptops": [
        ("Aero 13 Laptop", "899.00"), ("Aero 15 Laptop", "1199.00"), ("Summit Pro 14", "1649.00"),
        ("Summit Pro 16", "2199.00"), ("Student Chromebook", "329.00"), ("Workstation X1", "2899.00"),
    ],
    "Monitors": [
        ("24in Office Monitor", "179.00"), ("27in QHD Monitor", "329.00"), ("27in 4K Monitor", "449.00"),
        ("34in Ultrawide Monitor", "699.00"), ("Portable 15in Display", "229.00"),
    ],
    "Accessories": [
        ("Wireless Mouse", "29.99"), ("Ergonomic Mouse", "59.00"), ("Mechanical Keyboard", "119.00"),
        ("Slim Keyboard", "49.00"), ("USB-C Dock", "189.00"), ("USB-C Hub", "39.99"),
        ("Laptop Sleeve", "34.50"), ("Noise-Cancelling Headset", "179.00"), ("HD Webcam", "89.00"),
        ("Laptop Stand", "45.00"), ("65W Charger", "49.99"),
    ],
    "Software": [
        ("Office Suite Annual", "99.00"), ("Antivirus Annual", "39.99"), ("Design Studio Annual", "239.00"),
        ("Backup Cloud 1TB Annual", "69.99"), ("Project Planner Annual", "149.00"),
        ("Password Vault Annual", "35.88"),
    ],
    "Services": [
        ("On-site Setup", "150.00"), ("Extended Warranty 2y", "199.00"), ("Extended Warranty 3y", "279.00"),
        ("Data Migration", "120.00"), ("Remote Support Plan", "240.00"),
    ],
    "Furniture": [
        ("Standing Desk", "549.00"), ("Task Chair", "329.00"), ("Executive Chair", "689.00"),
        ("Monitor Arm", "129.00"), ("Desk Lamp", "59.00"), ("Cable Tray", "24.99"),
        ("Acoustic Panel Set", "210.00"),
    ],
}  # fmt: skip
_FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas", "Ava", "Mateo",
    "Isabella", "Leo", "Yuki", "Hiro", "Priya", "Arjun", "Chen", "Wei", "Mei", "Sofia", "Diego", "Valentina",
    "Lucia", "Pablo", "Camila", "Jonas", "Lena", "Felix", "Clara", "Marta", "Pierre", "Chloe", "Lars",
    "Ingrid", "Aisha", "Omar", "Fatima", "Kwame", "Amara", "Tariq", "Nadia", "Ivan", "Anya", "Mateus",
    "Beatriz", "Joao", "Kenji", "Sakura", "Min-jun", "Ji-woo",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Young", "King", "Mueller", "Schmidt", "Schneider", "Fischer", "Dubois", "Laurent", "Rossi",
    "Bianchi", "Jensen", "Nielsen", "Kowalski", "Novak", "Tanaka", "Suzuki", "Sato", "Kim", "Park", "Wang",
    "Zhang", "Singh", "Patel", "Sharma", "Silva", "Santos", "Oliveira", "Rodriguez", "Fernandez", "Gomez",
    "Diaz", "Costa", "Okafor", "Mensah",
)  # fmt: skip
_REGION_WEIGHTS = (35, 30, 22, 13)
_SEGMENT_WEIGHTS = (55, 30, 15)
_QUANTITY_WEIGHTS = (30, 22, 15, 10, 8, 5, 4, 3, 2, 1)  # quantities 1..10: small orders dominate
_MONTH_WEIGHTS = (7, 7, 8, 8, 8, 8, 7, 8, 9, 9, 10, 12)  # a busier fourth quarter


def sample_rows() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in insertion order (parents first). Same output on every call."""
    rng = random.Random(SEED)  # noqa: S311 - reproducible sample data, not secrets
    customers = _customers(rng)
    products = [
        {"id": number, "name": name, "category": category, "unit_price": Decimal(price)}
        for number, (category, name, price) in enumerate(
            ((category, name, price) for category, items in _CATALOG.items() for name, price in items),
            start=1,
        )
    ]
    return {"customers": customers, "products": products, "sales": _sales(rng, customers, products)}


def _customers(rng: random.Random) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    emails: set[str] = set()
    for number in range(1, CUSTOMER_COUNT + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        email = f"{first}.{last}@example.com".lower()
        if email in emails:
            email = f"{first}.{last}{number}@example.com".lower()
        emails.add(email)
        rows.append(
            {
                "id": number,
                "name": f"{first} {last}",
                "email": email,
                "region": rng.choices(REGIONS, weights=_REGION_WEIGHTS)[0],
                "segment": rng.choices(SEGMENTS, weights=_SEGMENT_WEIGHTS)[0],
                "created_at": date(2022, 1, 1) + timedelta(days=rng.randrange(3 * 365)),
            }
        )
    return rows


def _sales(
    rng: random.Random, customers: list[dict[str, Any]], products: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    days = [FIRST_ORDER + timedelta(days=offset) for offset in range((LAST_ORDER - FIRST_ORDER).days + 1)]
    day_weights = [_MONTH_WEIGHTS[day.month - 1] for day in days]
    # A few loyal customers buy much more often than the rest, as in real order books.
    customer_weights = [rng.choice((1, 1, 1, 2, 3, 8)) for _ in customers]
    orders = []
    for _ in range(SALES_COUNT):
        product = rng.choice(products)
        quantity = rng.choices(range(1, 11), weights=_QUANTITY_WEIGHTS)[0]
        orders.append(
            {
                "order_date": rng.choices(days, weights=day_weights)[0],
                "customer_id": rng.choices(customers, weights=customer_weights)[0]["id"],
                "product_id": product["id"],
                "quantity": quantity,
                "unit_price": product["unit_price"],
                "amount": product["unit_price"] * quantity,
            }
        )
    orders.sort(key=lambda order: (order["order_date"], order["customer_id"], order["product_id"]))
    return [{"id": number, **order} for number, order in enumerate(orders, start=1)]


def load_sample_data(connection: Connection) -> None:
    """Create the sample tables and insert the sample rows through ``connection`` (any dialect)."""
    METADATA.create_all(connection)
    for name, rows in sample_rows().items():
        connection.execute(METADATA.tables[name].insert(), rows)


def build_sample_database(path: Path) -> Path:
    """Write the sample database as a SQLite file at ``path`` (replaced atomically) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{partial}")
    try:
        with engine.begin() as connection:
            load_sample_data(connection)
    finally:
        engine.dispose()
    os.replace(partial, path)  # readers never see a half-written file
    return path
