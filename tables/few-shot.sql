-- title: Few-shot predictors: Kendall τ against the number of training architectures
-- caption: Mean over random training sets of Kendall τ-b between predicted and true values on every
-- caption: test architecture (proxybench combine). Training sets are drawn by isomorphism class: no
-- caption: test architecture is an isomorph of a training one, unless the row says "split by string".
-- caption: Blocks: the truth predicted (a dataset other than the proxies' own means proxies scored on
-- caption: that other dataset — see the run's settings); rows: model · feature set; columns: n.
-- needs: predictions
-- decimals: 3

-- @table
SELECT model || ' · ' || features || CASE WHEN split_kind = 'arch' THEN ' (split by string)' ELSE '' END AS row,
       space || ' ' || dataset || ' ' || metric AS row_group,
       'Kendall τ' AS col_group,
       'n = ' || n AS col,
       avg(kendall) AS value,
       'max' AS better
FROM predictor_metrics
GROUP BY space, dataset, metric, features, model, split_kind, n
ORDER BY row_group, features, model, split_kind, n
