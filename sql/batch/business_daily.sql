-- Reviews per business per day (UTC), for trends.
SELECT
    business_id,
    CAST("date" AS DATE) AS day,
    count(*) AS reviews,
    avg(CAST(stars AS DOUBLE)) AS avg_stars
FROM reviews
GROUP BY business_id, CAST("date" AS DATE)
