-- title: Zero-cost proxies on NAS-Bench-201: rank correlation with accuracy
-- caption: Spearman ρ and Kendall τ-b between each proxy's score and the benchmark accuracy, per
-- caption: dataset, truth metric (test or valid accuracy) and source of the scores (n: architectures with both a finite
-- caption: score and an accuracy), in the layout of NAS-Bench-Suite-Zero. Positive means the proxy
-- caption: ranks better architectures higher (scores of lower-is-better proxies are negated).
-- needs: scores, truth
-- metrics: test_acc, valid_acc

-- One column block per (dataset, metric, scores source): the published NAS-Bench-Suite-Zero
-- scores, once imported (proxybench truth import zc_nasbench201.json), sit beside your own.
WITH c AS (
    SELECT *,
           CASE WHEN preset LIKE '%-published' THEN replace(preset, '-published', ' (published)')
                ELSE preset || ', seed ' || seed || ', batch ' || batch_size END AS source,
           max(n) OVER (PARTITION BY dataset, metric, scores_label, truth_label) AS block_n
    FROM correlations
),
cells AS (
    SELECT proxy, dataset, metric, source, block_n, 1 AS stat, 'ρ' AS col, spearman AS value FROM c
    UNION ALL
    SELECT proxy, dataset, metric, source, block_n, 2 AS stat, 'τ' AS col, kendall AS value FROM c
)
SELECT proxy AS row,
       dataset || ' ' || replace(metric, '_acc', '') || ' · ' || source || ' · n=' || block_n AS col_group,
       col, value, 'max' AS better
FROM cells
ORDER BY lower(dataset), metric, source LIKE '%(published)', source, stat, proxy
