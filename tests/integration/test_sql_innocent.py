"""Innocent queries pass on SQLite and PostgreSQL, with the answers the sample rows say they should have.

The expected values come from ``sample_rows()`` in Python, so both databases are held to the same answer.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from threadrunner.tools.registry import call_tool
from threadrunner.tools.sample_data import sample_rows

from tests.support.sql_databases import ALLOWED_TABLES, Target, postgres_target, sqlite_target, target

__all__ = ["postgres_target", "sqlite_target", "target"]  # fixtures used by the tests below

ROWS = sample_rows()
SALES, CUSTOMERS, PRODUCTS = ROWS["sales"], ROWS["customers"], ROWS["products"]
REGION_OF = {customer["id"]: customer["region"] for customer in CUSTOMERS}
SEGMENT_OF = {customer["id"]: customer["segment"] for customer in CUSTOMERS}
CATEGORY_OF = {product["id"]: product["category"] for product in PRODUCTS}

DEMO_QUERY = (
    "SELECT c.region, ROUND(SUM(s.amount), 2) AS total_sales, COUNT(*) AS orders"
    " FROM sales s JOIN customers c ON c.id = s.customer_id"
    " WHERE s.order_date >= '2026-07-01' AND s.order_date < '2026-10-01'"
    " GROUP BY c.region ORDER BY total_sales DESC"
)


def demo_answer() -> list[list[Any]]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    orders: Counter[str] = Counter()
    for sale in SALES:
        if date(2026, 7, 1) <= sale["order_date"] < date(2026, 10, 1):
            totals[REGION_OF[sale["customer_id"]]] += sale["amount"]
            orders[REGION_OF[sale["customer_id"]]] += 1
    answer = [[region, float(total), orders[region]] for region, total in totals.items()]
    return sorted(answer, key=lambda row: -row[1])


def first_quantities(count: int) -> list[int]:
    return [sale["quantity"] for sale in SALES[:count]]


INNOCENT: dict[str, tuple[str, list[list[Any]]]] = {
    "demo query": (DEMO_QUERY, demo_answer()),
    "columns named like keywords": (
        "SELECT id AS updated_at, quantity AS deleted, 'x' AS \"select\" FROM sales ORDER BY id LIMIT 2",
        [[1, first_quantities(1)[0], "x"], [2, first_quantities(2)[1], "x"]],
    ),
    "cte named like a keyword": (
        "WITH updated_at AS (SELECT customer_id, MAX(order_date) AS last_order"
        " FROM sales GROUP BY customer_id) SELECT COUNT(*) AS customers_with_orders FROM updated_at",
        [[len({sale["customer_id"] for sale in SALES})]],
    ),
    "string literals that look like attacks": (
        "SELECT 'DROP TABLE sales; --' AS note, COUNT(*) AS n FROM customers"
        " WHERE name <> 'DELETE FROM customers'",
        [["DROP TABLE sales; --", len(CUSTOMERS)]],
    ),
    "joins of three tables": (
        "SELECT p.category, c.segment, COUNT(*) AS orders FROM sales s"
        " JOIN products p ON p.id = s.product_id JOIN customers c ON c.id = s.customer_id"
        " GROUP BY p.category, c.segment ORDER BY p.category, c.segment",
        [
            [category, segment, count]
            for (category, segment), count in sorted(
                Counter((CATEGORY_OF[s["product_id"]], SEGMENT_OF[s["customer_id"]]) for s in SALES).items()
            )
        ],
    ),
    "window functions": (
        "SELECT id, ROW_NUMBER() OVER (ORDER BY id DESC) AS from_the_end,"
        " SUM(quantity) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running"
        " FROM sales ORDER BY id LIMIT 3",
        [[n, len(SALES) + 1 - n, sum(first_quantities(n))] for n in (1, 2, 3)],
    ),
    "recursive and chained ctes": (
        "WITH RECURSIVE months(m) AS (SELECT 1 UNION ALL SELECT m + 1 FROM months WHERE m < 12),"
        " counted AS (SELECT COUNT(*) AS n, MAX(m) AS last FROM months) SELECT n, last FROM counted",
        [[12, 12]],
    ),
    "case, coalesce and nullif": (
        "SELECT region, SUM(CASE WHEN segment = 'Enterprise' THEN 1 ELSE 0 END) AS enterprise,"
        " COALESCE(NULLIF(MIN(segment), 'Consumer'), 'none') AS smallest"
        " FROM customers GROUP BY region ORDER BY region",
        [
            [
                region,
                sum(1 for c in CUSTOMERS if c["region"] == region and c["segment"] == "Enterprise"),
                "none",
            ]
            for region in sorted(set(REGION_OF.values()))
        ],
    ),
    "exists": (
        "SELECT COUNT(*) AS buyers FROM customers c"
        " WHERE EXISTS (SELECT 1 FROM sales s WHERE s.customer_id = c.id)",
        [[len({sale["customer_id"] for sale in SALES})]],
    ),
    "union all": (
        "SELECT 'customers' AS t, COUNT(*) AS n FROM customers"
        " UNION ALL SELECT 'products', COUNT(*) FROM products ORDER BY t",
        [["customers", len(CUSTOMERS)], ["products", len(PRODUCTS)]],
    ),
    "quoted names": (
        'SELECT "region", COUNT(*) AS "n" FROM "customers" GROUP BY "region" ORDER BY "region"',
        [[region, count] for region, count in sorted(Counter(REGION_OF.values()).items())],
    ),
    "in, like and between": (
        "SELECT COUNT(*) AS n FROM products WHERE category IN ('Laptops', 'Monitors')"
        " AND (name LIKE '%Pro%' OR unit_price BETWEEN 100 AND 500)",
        [
            [
                sum(
                    1
                    for p in PRODUCTS
                    if p["category"] in ("Laptops", "Monitors")
                    and ("Pro" in p["name"] or 100 <= p["unit_price"] <= 500)
                )
            ]
        ],
    ),
    "months from dates": (
        "SELECT SUBSTR(CAST(order_date AS TEXT), 1, 7) AS month, COUNT(*) AS orders FROM sales"
        " GROUP BY SUBSTR(CAST(order_date AS TEXT), 1, 7) ORDER BY month LIMIT 2",
        [
            [month, count]
            for month, count in sorted(Counter(s["order_date"].isoformat()[:7] for s in SALES).items())
        ][:2],
    ),
}


@pytest.mark.parametrize(("sql", "expected"), list(INNOCENT.values()), ids=list(INNOCENT))
def test_innocent_query_answers_correctly(target: Target, sql: str, expected: list[list[Any]]) -> None:
    result = call_tool("query_database", json.dumps({"query": sql}), target.context())
    body = json.loads(result.output)
    assert not result.is_error, body
    assert body["rows"] == expected
    assert body["row_count"] == len(expected) and body["truncated"] is False
    assert target.unchanged()


@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_the_demo_query_gives_the_same_figures_on_both_databases(
    sqlite_target: Target, postgres_target: Target
) -> None:
    outputs = [
        call_tool("query_database", json.dumps({"query": DEMO_QUERY}), each.context()).output
        for each in (sqlite_target, postgres_target)
    ]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["rows"] == demo_answer()


def test_the_schema_qualified_name_of_an_allowed_table_is_fine(target: Target) -> None:
    sql = f"SELECT COUNT(*) AS n FROM {target.database.schema}.sales"
    result = call_tool("query_database", json.dumps({"query": sql}), target.context())
    assert json.loads(result.output)["rows"] == [[len(SALES)]]


def test_long_answers_stop_at_the_row_cap(target: Target) -> None:
    result = call_tool("query_database", '{"query": "SELECT id FROM sales ORDER BY id"}', target.context())
    body = json.loads(result.output)
    assert (body["row_count"], body["truncated"], body["rows"][0], body["rows"][-1]) == (
        1000,
        True,
        [1],
        [1000],
    )
    assert result.truncated is True


def test_the_same_query_runs_again_and_again(target: Target) -> None:
    # PostgreSQL: a prepared statement on a connection reset by DISCARD ALL must not confuse the driver.
    outputs = {
        call_tool("query_database", json.dumps({"query": DEMO_QUERY}), target.context()).output for _ in "abc"
    }
    assert len(outputs) == 1 and '"error"' not in outputs.pop()


def test_get_table_schema_describes_an_allowed_table(target: Target) -> None:
    result = call_tool("get_table_schema", '{"table": "Sales"}', target.context())
    schema = json.loads(result.output)
    assert not result.is_error, schema
    columns = {column["name"]: column for column in schema["columns"]}
    assert list(columns) == [
        "id",
        "order_date",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price",
        "amount",
    ]
    assert (columns["amount"]["type"], columns["order_date"]["type"]) == ("NUMERIC(12, 2)", "DATE")
    assert not any(column["nullable"] for column in schema["columns"])
    assert schema["primary_key"] == ["id"]
    assert sorted(
        (key["columns"], key["references_table"], key["references_columns"]) for key in schema["foreign_keys"]
    ) == [
        (["customer_id"], "customers", ["id"]),
        (["product_id"], "products", ["id"]),
    ]


@pytest.mark.parametrize("table", ["internal_notes", "no_such_table", "sqlite_master", "pg_class"])
def test_get_table_schema_answers_forbidden_tables_like_missing_ones(target: Target, table: str) -> None:
    result = call_tool("get_table_schema", json.dumps({"table": table}), target.context())
    assert result.is_error
    assert json.loads(result.output)["error"] == (
        f"unknown table '{table}'; the tables you can use are: {', '.join(ALLOWED_TABLES)}"
    )
