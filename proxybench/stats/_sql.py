"""The correlation statistics as DuckDB SQL over a table ``pb_pairs(gid, x, y)``.

``gid`` identifies a group (one proxy × dataset × metric × settings), ``x`` is the oriented
score (higher = predicted better) and ``y`` the true value. Every statistic is computed for
all groups at once, in one query each; nothing here is formatted from user input (the
top-k percentages go in as a ``?`` parameter).

**Spearman ρ** is the Pearson correlation of average ranks. DuckDB's ``rank()`` gives the
smallest rank of a tie group, and ``count(*)`` over the same ordered window (whose default
frame runs to the last *peer* of the current row) gives the largest, so the average rank is
their mean, from a single sort per variable.

**Kendall τ-b**. With n0 = n(n−1)/2, n1 = Σ tx(tx−1)/2 over the tie groups of x, n2 the same
for y and n3 for pairs tied in both, the concordant minus discordant count is
``n0 − n1 − n2 + n3 − 2·nd``, where nd counts *strictly* discordant pairs, and
τ-b = (n0 − n1 − n2 + n3 − 2nd) / √((n0 − n1)(n0 − n2)) — exactly scipy's variant ``b``.
Everything but nd is a count of equal values. nd is an inversion count: order the pairs by
(x, y) and replace y by its dense rank r (ties equal); then nd = #{i < j : r_i > r_j}
(pairs tied in x are ordered by y, so they never count; pairs tied in y have equal r). A
self-join would need O(n²) rows (1.2·10⁸ per proxy at 15,625 architectures). Instead the
inversions are counted bit by bit, as a radix merge sort does: a pair with r_i > r_j has a
highest differing bit b, where r_i has a 1 and r_j a 0, and above which both agree. So

    nd = Σ_b Σ_{j : bit_b(r_j) = 0}  #{i < j : r_i >> (b+1) = r_j >> (b+1), bit_b(r_i) = 1}

Within one part (gid, b, r >> (b+1)) ordered by position, the inner sum over the part's z
zeros equals Σ_zeros rn − z(z+1)/2, where rn is the ``row_number()`` in the part (the places of
the zeros are the zeros before them plus the ones before them). So each level costs one
``row_number()`` window and a hash aggregate, with the part packed into one BIGINT key
(``(gid·64 + b)·2³² + (r >> (b+1))``, which DuckDB partitions more than twice as fast as three
keys). That is ⌈log2 n⌉ (14 for NB201) windowed passes over the pairs, O(n log² n) work with
exact integer arithmetic, instead of the O(n²) rows of a self-join.

**Top-k overlap**: the share of the truly best m = ⌈k·n/100⌉ architectures that the proxy
also places in its best m. Ties at the cut are shared, not broken arbitrarily: a tie group
occupying places lo..hi belongs to the best m with the fraction clamp((m − lo + 1)/(hi − lo
+ 1), 0, 1) per member, and the overlap is Σ min(a_i, b_i)/m over the true (a) and the
proxy's (b) memberships (the fuzzy intersection). Without ties at the cut this is the plain
definition; a proxy equal to the truth scores 1, a constant proxy k/100 (chance level).
"""

from __future__ import annotations

__all__ = ["RANKS_SQL", "KENDALL_SQL", "TOPK_SQL"]

#: n, Spearman ρ, Pearson r and whether x or y is constant, per group.
RANKS_SQL = """
WITH ranked AS (
    SELECT gid, x, y,
           (rank() OVER wx + count(*) OVER wx) / 2.0 AS rx,
           (rank() OVER wy + count(*) OVER wy) / 2.0 AS ry
    FROM pb_pairs
    WINDOW wx AS (PARTITION BY gid ORDER BY x), wy AS (PARTITION BY gid ORDER BY y)
)
SELECT gid,
       count(*) AS n,
       corr(rx, ry) AS spearman,
       corr(x, y) AS pearson,
       min(x) = max(x) AS x_constant,
       min(y) = max(y) AS y_constant
FROM ranked
GROUP BY gid
"""

#: Kendall τ-b per group (see the module docstring for the formulation).
KENDALL_SQL = """
WITH ordered AS (
    SELECT gid,
           row_number() OVER (PARTITION BY gid ORDER BY x, y) AS pos,
           CAST(dense_rank() OVER (PARTITION BY gid ORDER BY y) - 1 AS BIGINT) AS r
    FROM pb_pairs
),
levels AS (
    SELECT gid, max(r) AS rmax FROM ordered GROUP BY gid
),
bits AS (
    -- one row per (pair, level b) for the levels the group's largest rank needs
    SELECT o.gid, o.pos, o.r, lv.b,
           (o.gid * 64 + lv.b) * 4294967296 + (o.r >> (lv.b + 1)) AS part
    FROM ordered o
    JOIN levels USING (gid)
    JOIN (SELECT CAST(range AS BIGINT) AS b FROM range(0, 63)) lv ON (levels.rmax >> lv.b) > 0
),
runs AS (
    SELECT part, any_value(gid) AS gid,
           sum(rn) FILTER (WHERE bit = 0) AS s0,
           count(*) FILTER (WHERE bit = 0) AS z
    FROM (SELECT gid, part, (r >> b) & 1 AS bit,
                 row_number() OVER (PARTITION BY part ORDER BY pos) AS rn
          FROM bits)
    GROUP BY part
),
discordant AS (
    -- in a part, the zeros' places rn sum to z(z+1)/2 plus the ones standing before them
    SELECT gid, CAST(sum(coalesce(s0, 0) - z * (z + 1) / 2) AS HUGEINT) AS nd
    FROM runs GROUP BY gid
),
tie_x AS (
    SELECT gid, sum(c * (c - 1) / 2) AS n1
    FROM (SELECT gid, CAST(count(*) AS HUGEINT) AS c FROM pb_pairs GROUP BY gid, x) GROUP BY gid
),
tie_y AS (
    SELECT gid, sum(c * (c - 1) / 2) AS n2
    FROM (SELECT gid, CAST(count(*) AS HUGEINT) AS c FROM pb_pairs GROUP BY gid, y) GROUP BY gid
),
tie_xy AS (
    SELECT gid, sum(c * (c - 1) / 2) AS n3
    FROM (SELECT gid, CAST(count(*) AS HUGEINT) AS c FROM pb_pairs GROUP BY gid, x, y) GROUP BY gid
),
totals AS (
    SELECT gid, CAST(count(*) AS HUGEINT) * (count(*) - 1) / 2 AS n0 FROM pb_pairs GROUP BY gid
)
SELECT t.gid,
       CASE WHEN (t.n0 - tx.n1) = 0 OR (t.n0 - ty.n2) = 0 THEN CAST('NaN' AS DOUBLE)
            ELSE CAST(t.n0 - tx.n1 - ty.n2 + txy.n3 - 2 * coalesce(d.nd, 0) AS DOUBLE)
                 / sqrt(CAST(t.n0 - tx.n1 AS DOUBLE)) / sqrt(CAST(t.n0 - ty.n2 AS DOUBLE))
       END AS kendall,
       coalesce(d.nd, 0) AS discordant
FROM totals t
JOIN tie_x tx USING (gid)
JOIN tie_y ty USING (gid)
JOIN tie_xy txy USING (gid)
LEFT JOIN discordant d USING (gid)
"""

#: Top-k overlap per (group, k); parameter 1: the list of k percentages.
TOPK_SQL = """
WITH places AS (
    SELECT gid,
           rank() OVER px AS x_lo, count(*) OVER px AS x_hi,
           rank() OVER py AS y_lo, count(*) OVER py AS y_hi,
           count(*) OVER (PARTITION BY gid) AS n
    FROM pb_pairs
    WINDOW px AS (PARTITION BY gid ORDER BY x DESC), py AS (PARTITION BY gid ORDER BY y DESC)
),
ks AS (
    SELECT DISTINCT unnest(?::DOUBLE[]) AS k
),
cut AS (
    SELECT p.*, ks.k, greatest(1, ceil(ks.k * p.n / 100.0 - 1e-9)) AS m
    FROM places p CROSS JOIN ks
)
SELECT gid, k, any_value(m) AS m,
       sum(least(greatest((m - x_lo + 1) / (x_hi - x_lo + 1), 0), 1,
                 greatest((m - y_lo + 1) / (y_hi - y_lo + 1), 0))) / any_value(m) AS overlap
FROM cut
GROUP BY gid, k
"""
