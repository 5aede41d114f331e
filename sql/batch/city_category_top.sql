-- The ten most reviewed categories of each city.
-- A business counts once in every category it lists; ties rank alphabetically by category.
WITH business_categories AS (
    SELECT business_id, city, unnest(categories) AS category
    FROM businesses
),
per_category AS (
    SELECT bc.city,
           bc.category,
           count(DISTINCT bc.business_id) AS businesses,
           count(r.review_id) AS reviews,
           avg(CAST(r.stars AS DOUBLE)) AS avg_stars
    FROM business_categories bc
    LEFT JOIN reviews r ON r.business_id = bc.business_id
    GROUP BY bc.city, bc.category
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY city ORDER BY reviews DESC, category ASC) AS rank
    FROM per_category
)
SELECT city, category, businesses, reviews, avg_stars, CAST(rank AS INT) AS rank
FROM ranked
WHERE rank <= 10
