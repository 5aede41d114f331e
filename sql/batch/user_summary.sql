-- One row per user: how many reviews they wrote, how they rate, when, and their elite years.
SELECT
    u.user_id,
    COALESCE(r.reviews, 0) AS reviews,
    r.avg_stars_given,
    r.first_review_at,
    r.last_review_at,
    u.elite AS elite_years
FROM users u
LEFT JOIN (
    SELECT user_id,
           count(*) AS reviews,
           avg(CAST(stars AS DOUBLE)) AS avg_stars_given,
           min("date") AS first_review_at,
           max("date") AS last_review_at
    FROM reviews
    GROUP BY user_id
) r ON r.user_id = u.user_id
