"""Cross-sell recommendations for letter targets, set-based in DuckDB, a range of targets per statement."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from crmlist.letters.offers import Offers, resolve_offers
from crmlist.store import drop_temp, dropped
from crmlist.workspace import Workspace

RECOMMENDATIONS_TABLE = "letter_recommendations"
LIFT_TABLE = "letter_recommendation_lift"
RANGE_ROWS = 50_000  # targets per statement: DuckDB's memory stays bounded whatever the run's size
FIRST_RANGE_ROWS = 8_192  # the first statement's: the workers wait for it
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Co-purchase lift of every product pair (a, b) over orders up to as-of that hold at least one
# product_id, computed once per run:
#     lift(a, b) = n_ab * N / (n_a * n_b) = P(a and b) / (P(a) * P(b))
# where N is the number of such orders, n_a the orders holding a, n_ab the orders holding both.
# A pair qualifies with n_ab >= 5 and lift > 1, tested exactly in integers (n_ab * N > n_a * n_b).
#
# Products are numbered first, so that each order becomes one list of distinct integers (grouping by
# order_id is most of the work; integers make the rest cheap). The counts are taken over a slice of
# the orders per statement ({slice}: by a hash of order_id) and added up, so that DuckDB's memory
# stays bounded however many purchases there are: rows (a, b, n_ab), (a, NULL, n_a), (NULL, NULL, N).
LIFT_NUMS_SQL = """
CREATE OR REPLACE TEMP TABLE {into} AS
SELECT product_id, CAST(row_number() OVER () AS INTEGER) AS num
FROM (SELECT DISTINCT product_id FROM purchases WHERE product_id IS NOT NULL)
"""
LIFT_BASKETS_SQL = """
CREATE OR REPLACE TEMP TABLE {into} AS
SELECT list(DISTINCT n.num) AS items
FROM purchases AS pu JOIN {nums} AS n ON n.product_id = pu.product_id
WHERE pu.order_date <= (SELECT max(as_of) FROM run_params) AND pu.order_id IS NOT NULL {slice}
GROUP BY pu.order_id
"""
LIFT_COUNTS_SQL = """
INSERT INTO {into}
WITH singles AS (SELECT unnest(items) AS a, items FROM {baskets})
SELECT a, b, count(*) FROM (SELECT a, unnest(items) AS b FROM singles WHERE len(items) > 1) WHERE a <> b
GROUP BY a, b
UNION ALL SELECT a, NULL, count(*) FROM singles GROUP BY a
UNION ALL SELECT NULL, NULL, count(*) FROM {baskets}
"""
LIFT_SQL = """
CREATE OR REPLACE TEMP TABLE {into} AS
WITH counts AS (
    SELECT a.product_id AS anchor, o.product_id AS other, c.n
    FROM (SELECT anchor, other, sum(n) AS n FROM {counts} GROUP BY anchor, other) AS c
    LEFT JOIN {nums} AS a ON a.num = c.anchor LEFT JOIN {nums} AS o ON o.num = c.other
),
order_count AS (SELECT coalesce(max(n), 0) AS n FROM counts WHERE anchor IS NULL),
product_orders AS (  -- n_a; fewer than 5 orders can never give 5 shared ones
    SELECT anchor AS product_id, n AS n_p FROM counts WHERE other IS NULL AND anchor IS NOT NULL AND n >= 5
),
pairs AS (SELECT anchor, other, n AS n_ab FROM counts WHERE other IS NOT NULL AND n >= 5)
SELECT p.anchor, p.other, CAST(p.n_ab AS DOUBLE) * oc.n / (CAST(pa.n_p AS DOUBLE) * pb.n_p) AS lift
FROM pairs AS p
JOIN product_orders AS pa ON pa.product_id = p.anchor
JOIN product_orders AS pb ON pb.product_id = p.other
CROSS JOIN order_count AS oc
WHERE CAST(p.n_ab AS HUGEINT) * oc.n > CAST(pa.n_p AS HUGEINT) * pb.n_p
"""
LIFT_SLICE_ROWS = 1_000_000  # purchase rows per slice of the orders

# CTEs ending in `recs`: (customer_id, recs), the list of the best $n offers (structs of product_id, name,
# category, color, price, reason, and the bought product it follows from: because_id, because, because_color,
# because_category)
# of each target of {targets} that {within} selects and that has any. Never offered: a product the target
# bought, a product of a category the target bought within $category_days days before as-of, of the
# category of the product it follows from, of an excluded category, priced outside [$min_price,
# $max_price], or with in_stock false. Categories and colours compare case-insensitively ("Black" is "black").
#
# Each offer gets one integer key that sorts as the offers do: rank * width + num, where rank orders
# (group, same colour first, position in the complements or -lift) and num is the product's number in
# product_id order. A target's keys then rank with integer aggregates alone: the best key per product,
# none of the products it bought (marked by key 0), the $n smallest.
#
# A bought product can lead to hundreds of co-purchases; a target only needs the first $n + (products
# it bought) + (products of the list in categories it bought lately) of each list (pos): an offer further
# down has before it at least $n products that are offered to it at a better key. Exact, and 7x faster
# at 200 co-purchases each. The bought product an offer follows from is one whose list offers it at its
# best key; of several, the first in product_id order (the same on every run).
RECS_CTES = """
params AS (SELECT max(as_of) AS as_of FROM run_params),
numbered AS (  -- products numbered in product_id order, from 1
    SELECT CAST(row_number() OVER (ORDER BY product_id) AS BIGINT) AS num, *
    FROM products WHERE product_id IS NOT NULL
),
width AS (SELECT count(*) + 1 AS m FROM numbered),
customers AS (
    SELECT customer_id, CAST(row_number() OVER () AS BIGINT) AS cnum
    FROM (SELECT DISTINCT customer_id FROM {targets} WHERE {within})
),
bought AS (  -- each target's products up to as-of; a product's category is its own, else the purchase's
    SELECT c.cnum, pu.product_id, any_value(pr.num) AS num,
           lower(any_value(pr.color)) AS color_key,
           lower(coalesce(any_value(pr.category), min(pu.category))) AS cat_key,
           count(*) OVER (PARTITION BY c.cnum) AS n_bought,
           max(pu.order_date) > any_value(params.as_of) - CAST($category_days AS INTEGER) AS lately
    FROM purchases AS pu
    JOIN customers AS c ON c.customer_id = pu.customer_id
    CROSS JOIN params
    LEFT JOIN numbered AS pr ON pr.product_id = pu.product_id
    WHERE pu.order_date <= params.as_of AND pu.product_id IS NOT NULL
    GROUP BY c.cnum, pu.product_id
),
recent AS (  -- the categories each target bought within $category_days days
    SELECT DISTINCT cnum, cat_key FROM bought WHERE lately AND cat_key IS NOT NULL
),
anchors AS (SELECT DISTINCT product_id, color_key, cat_key FROM bought),
candidates AS (  -- products that may be offered at all
    SELECT num, product_id, lower(category) AS cat_key, lower(color) AS color_key
    FROM numbered
    WHERE (category IS NULL OR NOT list_contains(CAST($exclude AS VARCHAR[]), lower(category)))
      AND coalesce(in_stock, TRUE)
      AND ($min_price IS NULL OR price >= $min_price) AND ($max_price IS NULL OR price <= $max_price)
),
complement AS (  -- same colour as the bought product first, then the order listed
    SELECT a.product_id AS anchor, a.color_key AS a_color, a.cat_key AS a_cat, c.num, c.cat_key AS o_cat, 1 AS grp,
           CASE WHEN c.color_key = a.color_key THEN 0 ELSE 1 END AS k1, CAST(x.pos AS DOUBLE) AS k2
    FROM anchors AS a
    JOIN products AS bp ON bp.product_id = a.product_id
    CROSS JOIN unnest(bp.complements) WITH ORDINALITY AS x(product_id, pos)
    JOIN candidates AS c ON c.product_id = x.product_id
    WHERE coalesce(c.cat_key <> a.cat_key, TRUE)
),
copurchase AS (  -- the category test is against the bought product that led to it
    SELECT a.product_id AS anchor, a.color_key AS a_color, a.cat_key AS a_cat, c.num, c.cat_key AS o_cat, 2 AS grp,
           0 AS k1, -l.lift AS k2
    FROM anchors AS a
    JOIN {lift} AS l ON l.anchor = a.product_id
    JOIN candidates AS c ON c.product_id = l.other
    WHERE coalesce(c.cat_key <> a.cat_key, TRUE)
),
keyed AS (  -- what a bought product leads to, keyed
    SELECT o.anchor, o.a_color, o.a_cat, o.grp, o.num, o.o_cat,
           dense_rank() OVER (ORDER BY o.grp, o.k1, o.k2) * w.m + o.num AS key
    FROM (SELECT * FROM complement UNION ALL SELECT * FROM copurchase) AS o CROSS JOIN width AS w
),
offers AS (  -- each product once per bought product, at its best key, with its place in that list
    SELECT *, row_number() OVER (PARTITION BY anchor, a_color, a_cat ORDER BY key) AS pos
    FROM (
        SELECT anchor, a_color, a_cat, num, o_cat, min(key) AS key, arg_min(grp, key) AS grp FROM keyed GROUP BY ALL
    )
),
list_categories AS (  -- how many products of each category a bought product's list holds
    SELECT anchor, a_color, a_cat, o_cat, count(*) AS n FROM offers WHERE o_cat IS NOT NULL GROUP BY ALL
),
widened AS (  -- the products of a list a target may not take for a category it bought lately
    SELECT b.cnum, b.product_id, sum(l.n) AS n
    FROM bought AS b
    JOIN recent AS r ON r.cnum = b.cnum
    JOIN list_categories AS l ON l.anchor = b.product_id AND l.a_color IS NOT DISTINCT FROM b.color_key
                              AND l.a_cat IS NOT DISTINCT FROM b.cat_key AND l.o_cat = r.cat_key
    GROUP BY b.cnum, b.product_id
),
looked AS (  -- each bought product: how far down its list to look, and the categories its target bought lately
    SELECT b.cnum, b.product_id, b.color_key, b.cat_key, $n + b.n_bought + coalesce(x.n, 0) AS deepest,
           coalesce(r.cats, []) AS blocked
    FROM bought AS b
    LEFT JOIN widened AS x ON x.cnum = b.cnum AND x.product_id = b.product_id
    LEFT JOIN (SELECT cnum, list(cat_key) AS cats FROM recent GROUP BY cnum) AS r ON r.cnum = b.cnum
),
scored AS (  -- a product once per target, at its best key; never one the target bought
    SELECT pair // w.m AS cnum, min(key) AS key
    FROM (
        SELECT b.cnum * w.m + o.num AS pair, o.key
        FROM looked AS b
        JOIN offers AS o ON o.anchor = b.product_id AND o.a_color IS NOT DISTINCT FROM b.color_key
                         AND o.a_cat IS NOT DISTINCT FROM b.cat_key AND o.pos <= b.deepest
        CROSS JOIN width AS w
        WHERE o.o_cat IS NULL OR NOT list_contains(b.blocked, o.o_cat)
        UNION ALL
        SELECT b.cnum * w.m + b.num, 0 FROM bought AS b CROSS JOIN width AS w WHERE b.num IS NOT NULL
    ) CROSS JOIN width AS w
    GROUP BY pair, w.m
    HAVING min(key) > 0
),
best_keys AS (  -- ascending: the best first (min(x, n) takes no n of 0)
    SELECT cnum, unnest(min(key, greatest($n, 1))[1:$n]) AS key FROM scored GROUP BY cnum
),
anchored AS (  -- each pick's bought product: of those whose list offers it at that very key, the first
    SELECT k.cnum, k.key, min(coalesce(b.num, 0)) AS a_num  -- 0: a bought product not in products
    FROM best_keys AS k
    JOIN bought AS b ON b.cnum = k.cnum
    JOIN offers AS o ON o.anchor = b.product_id AND o.a_color IS NOT DISTINCT FROM b.color_key
                     AND o.a_cat IS NOT DISTINCT FROM b.cat_key AND o.key = k.key
    GROUP BY k.cnum, k.key
),
best AS (
    SELECT c.customer_id, list(a.key ORDER BY a.key) AS keys, list(a.a_num ORDER BY a.key) AS anchors
    FROM anchored AS a JOIN customers AS c ON c.cnum = a.cnum
    GROUP BY c.customer_id
),
shelf AS (  -- the products by number, to look an offer's fields up by its key
    SELECT list(struct_pack(product_id := product_id, name := name, category := category, color := color,
                            price := price) ORDER BY num) AS products
    FROM numbered
),
last_complement AS (  -- complements rank before co-purchases: the rank that ends them
    SELECT coalesce(max(key // w.m) FILTER (WHERE grp = 1), 0) AS rank FROM offers CROSS JOIN width AS w
),
recs AS (  -- each key's product and reason, and the bought product it follows from (the shelf is one row)
    SELECT b.customer_id, list_transform(range(1, len(b.keys) + 1), lambda i: struct_pack(
               product_id := s.products[b.keys[i] % w.m].product_id, name := s.products[b.keys[i] % w.m].name,
               category := s.products[b.keys[i] % w.m].category, color := s.products[b.keys[i] % w.m].color,
               price := s.products[b.keys[i] % w.m].price,
               reason := CASE WHEN b.keys[i] // w.m <= lc.rank THEN 'complement' ELSE 'co-purchase' END,
               because_id := s.products[b.anchors[i]].product_id, because := s.products[b.anchors[i]].name,
               because_color := s.products[b.anchors[i]].color,
               because_category := s.products[b.anchors[i]].category)) AS recs
    FROM best AS b CROSS JOIN width AS w CROSS JOIN shelf AS s CROSS JOIN last_complement AS lc
)"""

# One row per (customer_id, rank) from the recs of RECS_CTES.
RANK_ROWS_SQL = """
SELECT customer_id, CAST(rank AS BIGINT) AS rank, rec.product_id, rec.name, rec.category, rec.color, rec.price,
       rec.reason, rec.because_id, rec.because, rec.because_color
FROM (SELECT customer_id, unnest(range(1, len(recs) + 1)) AS rank, unnest(recs) AS rec FROM recs)
"""


def workspace_offers(ws: Workspace) -> Offers:
    """crmlist.toml's [offers] alone, as a campaign without its own gets them."""
    return resolve_offers(ws.section("offers"), {}, "")


def _check_names(*names: str) -> None:
    for name in names:
        if not _IDENT_RE.match(name):
            raise ValueError(f"not a table name: {name!r}")


@dataclass(frozen=True)
class Lift:
    """The co-purchase lift of one letters run: the table recs_ctes reads, and the parameters it binds."""

    table: str
    params: dict[str, Any]


@contextlib.contextmanager
def co_purchase_lift(con: duckdb.DuckDBPyConnection, offers: Offers) -> Iterator[Lift]:
    """Compute what every range of targets shares (the co-purchase lift) for the block; dropped afterwards."""
    params = offers.params()
    try:
        _compute_lift(con, LIFT_TABLE)
        yield Lift(LIFT_TABLE, params)
    finally:
        with contextlib.suppress(duckdb.Error):  # a stopped command may have lost its connection
            drop_temp(con, LIFT_TABLE)


def _compute_lift(con: duckdb.DuckDBPyConnection, into: str) -> None:
    """The lift table `into`, from purchases counted a slice of the orders at a time."""
    nums, baskets, counts = (f"{into}_{part}" for part in ("nums", "baskets", "counts"))
    with dropped(con, baskets, counts, nums):
        con.execute(LIFT_NUMS_SQL.format(into=nums))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {counts} (anchor INTEGER, other INTEGER, n BIGINT)")
        purchases = int(con.execute("SELECT count(*) FROM purchases").fetchall()[0][0])
        slices = max(1, -(-purchases // LIFT_SLICE_ROWS))
        for piece in range(slices):  # integers in the text: a bound parameter here costs a third more
            where = f"AND hash(pu.order_id) % {slices} = {piece}" if slices > 1 else ""
            con.execute(LIFT_BASKETS_SQL.format(into=baskets, nums=nums, slice=where))
            con.execute(LIFT_COUNTS_SQL.format(into=counts, baskets=baskets))
        con.execute(LIFT_SQL.format(into=into, counts=counts, nums=nums))


def recs_ctes(targets: str, within: str, lift: Lift) -> str:
    """The WITH list ending in `recs` for the targets of `targets` that the condition `within` selects
    (on customer_id, with bound parameters), offering co-purchases by `lift` (bind lift.params too)."""
    _check_names(targets, lift.table)
    return RECS_CTES.format(targets=targets, within=within, lift=lift.table)


def range_starts(con: duckdb.DuckDBPyConnection, table: str, where: str = "", params: Any = None) -> list[str]:
    """The first customer_id of each RANGE_ROWS targets of `table` (that `where` keeps), in order, the
    first range cut short at FIRST_RANGE_ROWS: the workers start on it while the next one is computed."""
    _check_names(table)
    first = f" OR i = {int(FIRST_RANGE_ROWS)}" if 0 < FIRST_RANGE_ROWS < RANGE_ROWS else ""
    sql = f"""
        SELECT customer_id FROM (
            SELECT t.customer_id, row_number() OVER (ORDER BY t.customer_id) - 1 AS i
            FROM {table} AS t WHERE t.customer_id IS NOT NULL {where}
        ) WHERE i % {int(RANGE_ROWS)} = 0{first} ORDER BY customer_id
    """
    return [str(row[0]) for row in con.execute(sql, params or None).fetchall()]


def range_condition(alias: str, last: bool) -> str:
    """customer_id from $lo (to $hi) for a table alias ('' for none)."""
    column = f"{alias}.customer_id" if alias else "customer_id"
    return f"{column} >= $lo" + ("" if last else f" AND {column} < $hi")


def range_bounds(starts: list[str]) -> list[dict[str, str | None]]:
    """The $lo and $hi parameters of each range, the last one open-ended."""
    ends: list[str | None] = [*starts[1:], None] if starts else []
    return [{"lo": lo} if hi is None else {"lo": lo, "hi": hi} for lo, hi in zip(starts, ends, strict=True)]


def compute_recommendations(
    con: duckdb.DuckDBPyConnection, ws: Workspace, targets: str = "letter_targets", offers: Offers | None = None
) -> str:
    """Fill a temp table with one row per (customer_id, rank) for every target, a range of targets at a
    time; returns its name. (render_letters computes each range's own as it streams.) `offers`: a
    campaign's, else crmlist.toml's."""
    _check_names(targets, RECOMMENDATIONS_TABLE)
    with co_purchase_lift(con, offers or workspace_offers(ws)) as lift:
        ranges = range_bounds(range_starts(con, targets)) or [{"lo": None}]  # no targets: an empty table
        for i, bounds in enumerate(ranges):
            verb = "INSERT INTO" if i else "CREATE OR REPLACE TEMP TABLE"
            verb += f" {RECOMMENDATIONS_TABLE}" + ("" if i else " AS")
            ctes = recs_ctes(targets, range_condition("", "hi" not in bounds), lift)
            con.execute(f"{verb} WITH {ctes} {RANK_ROWS_SQL}", lift.params | bounds)
    return RECOMMENDATIONS_TABLE
