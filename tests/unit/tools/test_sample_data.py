"""The sample database: deterministic, realistic, and consistent with itself."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

from threadrunner.tools.sample_data import REGIONS, build_sample_database, sample_rows


def table_checksums(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        checksums = {}
        for (table,) in tables:
            rows = connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            checksums[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return checksums


def test_building_twice_gives_the_same_data(tmp_path: Path) -> None:
    first = build_sample_database(tmp_path / "first.db")
    second = build_sample_database(tmp_path / "second.db")
    assert set(table_checksums(first)) == {"customers", "products", "sales"}
    assert table_checksums(first) == table_checksums(second)


def test_rebuilding_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sample.db"
    path.write_text("not a database")
    assert build_sample_database(path) == path
    assert "sales" in table_checksums(path)
    assert list(tmp_path.iterdir()) == [path]  # no partial files left behind


def test_rows_are_realistic_and_consistent() -> None:
    rows = sample_rows()
    customers, products, sales = rows["customers"], rows["products"], rows["sales"]
    assert (len(customers), len(products), len(sales)) == (300, 40, 4000)
    assert set(Counter(customer["region"] for customer in customers)) == set(REGIONS)
    assert len({customer["email"] for customer in customers}) == len(customers)
    prices = {product["id"]: product["unit_price"] for product in products}
    created = {customer["id"]: customer["created_at"] for customer in customers}
    for sale in sales:
        assert date(2025, 1, 1) <= sale["order_date"] <= date(2026, 12, 31)
        assert sale["unit_price"] == prices[sale["product_id"]]
        assert sale["amount"] == sale["quantity"] * sale["unit_price"]
        assert sale["amount"] == sale["amount"].quantize(Decimal("0.01"))
        assert created[sale["customer_id"]] <= sale["order_date"]
    assert [sale["id"] for sale in sales] == list(range(1, 4001))
    # Every quarter of both years has orders, so "last quarter" always has an answer.
    assert len({(sale["order_date"].year, (sale["order_date"].month - 1) // 3) for sale in sales}) == 8
