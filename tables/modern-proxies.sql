-- title: Modern zero-cost proxies on NAS-Bench-201: rank correlation with accuracy
-- caption: Spearman ρ and Kendall τ-b between each proxy's score and the benchmark's test accuracy per
-- caption: dataset (n in the row: architectures with both a usable score and an accuracy; bootstrap intervals: proxybench
-- caption: correlate --bootstrap 1000), for the proxies published since 2021, their
-- caption: papers' ensembles (az_nas: Σ log(rank/N) of the four AZ-NAS components; tenas: the rank sum of
-- caption: tenas_ntk and tenas_lr; vkdnw_agg: Σ log(rank/N) of vkdnw_single, jacov_kaiming, az_expressivity,
-- caption: az_trainability and az_complexity; all ranked over the architectures read) and #params as the baseline. Each
-- caption: row is one proxy under one scoring preset (the paper's protocol: proxybench score --preset NAME).
-- caption: Published: the CIFAR-10 values the AZ-NAS paper (Lee & Ham, CVPR 2024, Table 1: all 15,625
-- caption: architectures, 200-epoch test accuracy) reports, MeCo's from its own paper (NeurIPS 2023) and
-- caption: VKDNW's from its paper (CVPR 2025, Table 1; ℵ = vkdnw_dim); "—" where the paper gives no value. The proxies are always
-- caption: scored on CIFAR-10-sized inputs of the dataset named in the column.
-- needs: scores, truth
-- metrics: test_acc
-- decimals: 3

-- @table
WITH roster(proxy, pos) AS (
    VALUES ('params', 0), ('zico', 1), ('gradsign', 2), ('gradsign_mean', 3), ('meco', 4), ('meco_opt', 5),
           ('swap', 6), ('swap_reg', 7), ('az_expressivity', 8), ('az_progressivity', 9), ('az_trainability', 10),
           ('az_complexity', 11), ('az_nas', 12), ('tenas_ntk', 13), ('tenas_lr', 14), ('tenas', 15),
           ('vkdnw', 16), ('vkdnw_dim', 17), ('vkdnw_single', 18), ('jacov_kaiming', 19), ('vkdnw_agg', 20)
),
published(proxy, col, value) AS (
    VALUES ('zico', 'ρ', 0.784), ('swap', 'ρ', 0.810), ('az_nas', 'ρ', 0.913), ('az_nas', 'τ', 0.741),
           ('az_expressivity', 'τ', 0.569), ('az_progressivity', 'τ', 0.521), ('az_trainability', 'τ', 0.349),
           ('az_complexity', 'τ', 0.578), ('tenas', 'τ', 0.536), ('gradsign', 'τ', 0.618),
           ('vkdnw_dim', 'ρ', 0.767), ('vkdnw_dim', 'τ', 0.626), ('vkdnw_single', 'ρ', 0.815),
           ('vkdnw_single', 'τ', 0.618), ('vkdnw_agg', 'ρ', 0.919), ('vkdnw_agg', 'τ', 0.750), ('meco', 'ρ', 0.89)
),
c AS (
    SELECT correlations.*, roster.pos,
           proxy || ' · ' || preset || ' · n=' || max(n) OVER (PARTITION BY proxy, preset, settings_hash) AS label
    FROM correlations JOIN roster USING (proxy)
),
cells AS (
    SELECT label, pos, dataset, 0 AS gpos, 1 AS stat, 'ρ' AS col, spearman AS value, 'max' AS better FROM c
    UNION ALL
    SELECT label, pos, dataset, 0, 2, 'τ', kendall, 'max' FROM c

    UNION ALL
    SELECT c.label, c.pos, 'CIFAR-10, published', 1, CASE p.col WHEN 'ρ' THEN 1 ELSE 2 END, p.col, p.value, NULL
    FROM published p JOIN (SELECT DISTINCT label, pos, proxy FROM c) c USING (proxy)
)
SELECT label AS row, dataset AS col_group, col, value, better
FROM cells
ORDER BY gpos, lower(dataset), stat, pos, label
