-- title: Zero-cost proxies against robustness on NAS-Bench-201 (CRoZe Table 1 layout)
-- caption: Spearman ρ between each proxy's score and accuracy on clean test images, under
-- caption: adversarial attacks (FGSM and PGD at ε = 1/255 and 8/255; copy this file into a
-- caption: --tables-dir folder to show other ε) and under the CIFAR-C common
-- caption: corruptions, grouped as weather (snow, frost, fog, brightness), noise (gaussian, shot,
-- caption: impulse), blur (defocus, glass, motion, zoom) and digital (contrast, elastic, pixelate,
-- caption: JPEG), each the mean accuracy over the group's corruptions and severities; CC avg. is
-- caption: the mean over all 15. A group is formed only where all its corruptions were measured.
-- caption: Ground truth: the NAS-Bench-201 robustness dataset (Jung et al., ICLR 2023), imported
-- caption: with proxybench truth import --format robustness. "—": no ground truth for that column.
-- needs: scores, truth
-- metrics: clean_acc, fgsm@1, fgsm@8, pgd@1, pgd@8, cc:weather, cc:noise, cc:blur, cc:digital, cc:all

-- @derived-truth
-- Mean accuracy per corruption group (and over all 15) per architecture, from cc:<name>@<severity> rows.
WITH groups(corruption, grp) AS (
    VALUES ('snow', 'weather'), ('frost', 'weather'), ('fog', 'weather'), ('brightness', 'weather'),
           ('gaussian_noise', 'noise'), ('shot_noise', 'noise'), ('impulse_noise', 'noise'),
           ('defocus_blur', 'blur'), ('glass_blur', 'blur'), ('motion_blur', 'blur'), ('zoom_blur', 'blur'),
           ('contrast', 'digital'), ('elastic_transform', 'digital'), ('pixelate', 'digital'),
           ('jpeg_compression', 'digital')
),
sizes AS (SELECT grp, count(*) AS members FROM groups GROUP BY grp),
cc AS (
    SELECT t.*, g.corruption, g.grp
    FROM truth t JOIN groups g ON split_part(t.metric, '@', 1) = 'cc:' || g.corruption
)
SELECT cc.space, cc.arch, any_value(cc.arch_uid) AS arch_uid, any_value(cc.arch_id) AS arch_id, cc.dataset,
       'cc:' || cc.grp AS metric, avg(cc.value) AS value, cc.epochs, cc.seed, cc.source
FROM cc JOIN sizes USING (grp)
GROUP BY cc.space, cc.arch, cc.dataset, cc.grp, cc.epochs, cc.seed, cc.source, sizes.members
HAVING count(DISTINCT cc.corruption) = sizes.members
UNION ALL
SELECT space, arch, any_value(arch_uid), any_value(arch_id), dataset, 'cc:all', avg(value), epochs, seed, source
FROM cc
GROUP BY space, arch, dataset, epochs, seed, source
HAVING count(DISTINCT corruption) = 15

-- @table
WITH c AS (
    SELECT *,
           CASE WHEN preset LIKE '%-published' THEN replace(preset, '-published', ' (published)')
                ELSE preset || ', seed ' || seed || ', batch ' || batch_size END AS source
    FROM correlations
),
columns_(metric, label, pos) AS (
    VALUES ('clean_acc', 'Clean', 0), ('fgsm@1', 'FGSM 1/255', 1), ('fgsm@8', 'FGSM 8/255', 2),
           ('pgd@1', 'PGD 1/255', 3), ('pgd@8', 'PGD 8/255', 4), ('cc:weather', 'Weather', 5),
           ('cc:noise', 'Noise', 6), ('cc:blur', 'Blur', 7), ('cc:digital', 'Digital', 8), ('cc:all', 'CC avg.', 9)
),
blocks AS (SELECT DISTINCT proxy, dataset, source FROM c)
SELECT b.proxy AS row, b.dataset || ' · ' || b.source AS col_group, k.label AS col, c.spearman AS value,
       'max' AS better
FROM blocks b
CROSS JOIN columns_ k
LEFT JOIN c ON c.proxy = b.proxy AND c.dataset = b.dataset AND c.source = b.source AND c.metric = k.metric
ORDER BY lower(b.dataset), b.source, k.pos, b.proxy
