-- description: One row per customer signed up by the run's as-of date: every customer column plus purchase facts as of then.
-- run_params is a one-row table crmlist creates for each session: as_of (DATE) and exclude_run (the run
-- being recomputed by --rerun, whose own contacts must not count; '' otherwise).
WITH bought AS (
    SELECT
        pu.customer_id,
        pu.order_id,
        pu.order_date,
        pu.amount,
        coalesce(pu.category, pr.category) AS category
    FROM purchases AS pu
    CROSS JOIN run_params AS rp
    LEFT JOIN products AS pr ON pr.product_id = pu.product_id
    WHERE pu.order_date <= rp.as_of
),
agg AS (
    SELECT
        b.customer_id,
        min(b.order_date) AS first_purchase_date,
        max(b.order_date) AS last_purchase_date,
        count(DISTINCT b.order_id) AS frequency,
        sum(b.amount) AS monetary,
        count(DISTINCT CASE WHEN b.order_date > rp.as_of - 365 THEN b.order_id END) AS frequency_365,
        sum(CASE WHEN b.order_date > rp.as_of - 365 THEN b.amount END) AS monetary_365,
        list_sort(list_distinct(list(b.category))) AS categories
    FROM bought AS b
    CROSS JOIN run_params AS rp
    GROUP BY b.customer_id
),
contacted AS (
    SELECT
        ch.customer_id,
        max(ch.as_of) AS last_contacted_at,
        count(CASE WHEN ch.as_of > rp.as_of - 90 THEN 1 END) AS contacts_90
    FROM contact_history AS ch
    CROSS JOIN run_params AS rp
    WHERE NOT ch.is_control AND ch.as_of <= rp.as_of AND ch.run_id IS DISTINCT FROM rp.exclude_run
    GROUP BY ch.customer_id
)
SELECT
    c.*,
    rp.as_of - a.last_purchase_date AS recency_days,
    coalesce(a.frequency, 0) AS frequency,
    CAST(coalesce(a.monetary, 0) AS DECIMAL(18, 2)) AS monetary,
    coalesce(a.frequency_365, 0) AS frequency_365,
    CAST(coalesce(a.monetary_365, 0) AS DECIMAL(18, 2)) AS monetary_365,
    -- monetary / frequency rounded half away from zero, in exact integer cents (decimal division is a float)
    CASE WHEN a.frequency > 0 THEN CAST(
        CAST(sign(a.monetary) * ((abs(CAST(a.monetary * 100 AS HUGEINT)) * 2 + a.frequency) // (2 * a.frequency))
            AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(18, 2))
    END AS avg_order_value,
    a.first_purchase_date,
    a.last_purchase_date,
    rp.as_of - c.signup_date AS tenure_days,
    date_sub('year', c.birth_date, rp.as_of) AS age,
    coalesce(a.categories, CAST([] AS VARCHAR[])) AS categories,
    k.last_contacted_at,
    coalesce(k.contacts_90, 0) AS contacts_90
FROM customers AS c
CROSS JOIN run_params AS rp
LEFT JOIN agg AS a ON a.customer_id = c.customer_id
LEFT JOIN contacted AS k ON k.customer_id = c.customer_id
-- As of a date, only the customers who had signed up by then (a backfill never sees later sign-ups).
WHERE c.signup_date IS NULL OR c.signup_date <= rp.as_of
