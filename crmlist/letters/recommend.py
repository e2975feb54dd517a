"""Cross-sell recommendations for every letter target at once, set-based in DuckDB."""

from __future__ import annotations

import re

import duckdb

from crmlist.errors import BadInputError
from crmlist.workspace import Workspace

RECOMMENDATIONS_TABLE = "letter_recommendations"
LIFT_TABLE = "letter_recommendation_lift"
SLICE_TARGETS = 50_000  # targets ranked per statement: DuckDB's memory stays bounded whatever the run's size
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Co-purchase lift of the pairs (anchor, other) whose anchor some target in {targets} bought. Lift of
# a pair (a, b), over orders up to as-of that hold at least one product_id:
#     lift(a, b) = n_ab * N / (n_a * n_b) = P(a and b) / (P(a) * P(b))
# where N is the number of such orders, n_a the orders holding a, n_ab the orders holding both.
# A pair qualifies with n_ab >= 5 and lift > 1, tested exactly in integers (n_ab * N > n_a * n_b).
LIFT_SQL = """
CREATE OR REPLACE TEMP TABLE {into} AS
WITH params AS (SELECT max(as_of) AS as_of FROM run_params),
baskets AS (
    SELECT DISTINCT pu.order_id, pu.product_id
    FROM purchases AS pu CROSS JOIN params
    WHERE pu.order_date <= params.as_of AND pu.product_id IS NOT NULL AND pu.order_id IS NOT NULL
),
order_count AS (SELECT count(DISTINCT order_id) AS n FROM baskets),
product_orders AS (  -- n_a; fewer than 5 orders can never give 5 shared ones
    SELECT product_id, count(*) AS n_p FROM baskets GROUP BY product_id HAVING count(*) >= 5
),
anchors AS (
    SELECT DISTINCT pu.product_id
    FROM purchases AS pu
    JOIN (SELECT DISTINCT customer_id FROM {targets}) AS t ON t.customer_id = pu.customer_id
    JOIN product_orders AS po ON po.product_id = pu.product_id
    CROSS JOIN params
    WHERE pu.order_date <= params.as_of
),
pairs AS (
    SELECT a.product_id AS anchor, o.product_id AS other, count(*) AS n_ab
    FROM baskets AS a
    JOIN anchors AS an ON an.product_id = a.product_id
    JOIN baskets AS o ON o.order_id = a.order_id AND o.product_id <> a.product_id
    JOIN product_orders AS po ON po.product_id = o.product_id
    GROUP BY a.product_id, o.product_id
    HAVING count(*) >= 5
)
SELECT p.anchor, p.other, CAST(p.n_ab AS DOUBLE) * oc.n / (CAST(pa.n_p AS DOUBLE) * pb.n_p) AS lift
FROM pairs AS p
JOIN product_orders AS pa ON pa.product_id = p.anchor
JOIN product_orders AS pb ON pb.product_id = p.other
CROSS JOIN order_count AS oc
WHERE CAST(p.n_ab AS HUGEINT) * oc.n > CAST(pa.n_p AS HUGEINT) * pb.n_p
"""

# One row per (customer_id, rank) for the targets in {targets} whose hash falls in slice $slice of
# $slices: a slice at a time keeps DuckDB's memory bounded however many targets. Parameters: excluded
# categories (lower-cased) and N. Categories and colours compare case-insensitively ("Black" is "black").
RANK_SQL = """
{verb}
WITH params AS (SELECT max(as_of) AS as_of FROM run_params),
target_ids AS (SELECT DISTINCT customer_id FROM {targets} WHERE hash(customer_id) % $slices = $slice),
bought AS (  -- each target's products up to as-of; a product's category is its own, else the purchase's
    SELECT pu.customer_id, pu.product_id,
           lower(any_value(pr.color)) AS color_key,
           lower(coalesce(any_value(pr.category), min(pu.category))) AS cat_key
    FROM purchases AS pu
    JOIN target_ids AS t ON t.customer_id = pu.customer_id
    CROSS JOIN params
    LEFT JOIN products AS pr ON pr.product_id = pu.product_id
    WHERE pu.order_date <= params.as_of AND pu.product_id IS NOT NULL
    GROUP BY pu.customer_id, pu.product_id
),
candidates AS (  -- products that may be offered at all
    SELECT product_id, lower(category) AS cat_key, lower(color) AS color_key
    FROM products
    WHERE category IS NULL OR NOT list_contains(CAST($exclude AS VARCHAR[]), lower(category))
),
complement AS (  -- same colour as the bought product first, then the order listed
    SELECT b.customer_id, c.product_id, 1 AS grp,
           CASE WHEN c.color_key = b.color_key THEN 0 ELSE 1 END AS k1,
           CAST(x.pos AS DOUBLE) AS k2
    FROM bought AS b
    JOIN products AS bp ON bp.product_id = b.product_id
    CROSS JOIN unnest(bp.complements) WITH ORDINALITY AS x(product_id, pos)
    JOIN candidates AS c ON c.product_id = x.product_id
    WHERE coalesce(c.cat_key <> b.cat_key, TRUE)
),
copurchase AS (  -- the category test is against the bought product that led to it
    SELECT b.customer_id, c.product_id, 2 AS grp, 0 AS k1, -l.lift AS k2
    FROM bought AS b
    JOIN {lift} AS l ON l.anchor = b.product_id
    JOIN candidates AS c ON c.product_id = l.other
    WHERE coalesce(c.cat_key <> b.cat_key, TRUE)
),
scored AS (
    SELECT s.*,
           row_number() OVER (PARTITION BY s.customer_id, s.product_id ORDER BY s.grp, s.k1, s.k2) AS dup
    FROM (SELECT * FROM complement UNION ALL SELECT * FROM copurchase) AS s
    ANTI JOIN bought AS b ON b.customer_id = s.customer_id AND b.product_id = s.product_id
),
ranked AS (  -- a product appears once, at its best position
    SELECT customer_id, product_id, grp,
           row_number() OVER (PARTITION BY customer_id ORDER BY grp, k1, k2, product_id) AS rank
    FROM scored WHERE dup = 1
)
SELECT r.customer_id, r.rank, r.product_id, p.name, p.category, p.color, p.price,
       CASE r.grp WHEN 1 THEN 'complement' ELSE 'co-purchase' END AS reason
FROM ranked AS r JOIN products AS p ON p.product_id = r.product_id
WHERE r.rank <= $n
"""


def recommend_count(ws: Workspace) -> int:
    """How many recommendations a letter gets: crmlist.toml [offers] recommend, default 3."""
    value = ws.section("offers").get("recommend", 3)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInputError("crmlist.toml: offers.recommend", "must be a whole number >= 0", "e.g. recommend = 3")
    return value


def excluded_categories(ws: Workspace) -> list[str]:
    """Categories never offered: crmlist.toml [offers] exclude_categories, lower-cased."""
    value = ws.section("offers").get("exclude_categories", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInputError(
            "crmlist.toml: offers.exclude_categories", "must be a list of category names", 'e.g. ["gift-cards"]'
        )
    return sorted({v.strip().lower() for v in value})


def compute_recommendations(con: duckdb.DuckDBPyConnection, ws: Workspace, targets: str = "letter_targets") -> str:
    """Fill the temp table of recommendations for every target, a slice of targets at a time; returns its name."""
    for name in (targets, RECOMMENDATIONS_TABLE, LIFT_TABLE):
        if not _IDENT_RE.match(name):
            raise ValueError(f"not a table name: {name!r}")
    params = {"exclude": excluded_categories(ws), "n": recommend_count(ws)}
    con.execute(LIFT_SQL.format(into=LIFT_TABLE, targets=targets))
    count = int(con.execute(f"SELECT count(DISTINCT customer_id) FROM {targets}").fetchall()[0][0])
    slices = max(1, -(-count // SLICE_TARGETS))
    for piece in range(slices):
        first = f"CREATE OR REPLACE TEMP TABLE {RECOMMENDATIONS_TABLE} AS"
        verb = first if piece == 0 else f"INSERT INTO {RECOMMENDATIONS_TABLE}"
        sql = RANK_SQL.format(verb=verb, targets=targets, lift=LIFT_TABLE)
        con.execute(sql, params | {"slices": slices, "slice": piece})
    return RECOMMENDATIONS_TABLE
