-- title: GeNAS flatness ablation: σ ranges and α (Spearman ρ with test accuracy)
-- caption: Spearman ρ between the GeNAS flatness score and test accuracy, per set of noise
-- caption: levels σ (rows), dataset and weight α of the depth term (columns), over whatever
-- caption: flatness scores exist (proxies named genas*, their σ and α read from each score's
-- caption: recorded proxy settings). GeNAS Table 5 reports σ = {2e-3, 1e-2, 2e-2}, α = 1 as best.
-- needs: scores, truth
-- metrics: test_acc

WITH settings AS (
    SELECT DISTINCT settings_hash,
           coalesce(json_extract_string(settings, '$.proxy_settings.sigmas'), '(default σ)') AS sigmas,
           coalesce(json_extract_string(settings, '$.proxy_settings.alpha'), '(default)') AS alpha
    FROM scores
    WHERE proxy LIKE 'genas%'
)
SELECT 'σ = ' || s.sigmas AS row, c.dataset || CASE WHEN c.proxy <> 'genas' THEN ' · ' || c.proxy ELSE '' END
           AS col_group,
       'α = ' || s.alpha AS col, c.spearman AS value, 'max' AS better
FROM correlations c JOIN settings s USING (settings_hash)
WHERE c.proxy LIKE 'genas%' AND c.metric = 'test_acc'
ORDER BY lower(c.dataset), c.proxy, TRY_CAST(s.alpha AS DOUBLE), s.alpha, s.sigmas
