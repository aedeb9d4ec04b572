-- title: Architectures found by search (FlatNAS Table I layout)
-- caption: The architectures each search run returned: top-1 error 1 − F_A (%), robustness
-- caption: R(x, σ) (mean accuracy drop in percentage points under multiplicative weight noise),
-- caption: mean corruption error mCE (%), parameters and multiply-accumulates (millions).
-- caption: Lower is better in every column. Values as measured by proxybench search's final
-- caption: evaluation (archive rows marked selected). Best in each column over all runs.
-- needs: archive
-- decimals: 2

WITH picked AS (
    SELECT * FROM archive WHERE selected
),
cells AS (
    SELECT run_id, arch_label, 1 AS pos, '1 − F_A (%)' AS col, top1_error AS value FROM picked
    UNION ALL SELECT run_id, arch_label, 2, 'R', robustness FROM picked
    UNION ALL SELECT run_id, arch_label, 3, 'mCE (%)', mce FROM picked
    UNION ALL SELECT run_id, arch_label, 4, 'Params (M)', params_m FROM picked
    UNION ALL SELECT run_id, arch_label, 5, 'MACs (M)', macs_m FROM picked
)
SELECT run_id || ': ' || arch_label AS row, col, value, 'min' AS better
FROM cells
ORDER BY run_id, arch_label, pos
