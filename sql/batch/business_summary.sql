-- One row per business: its listing plus what its reviews say.
-- review_count counts the reviews in the lab's data (the dataset's own review_count field is a
-- snapshot from Yelp and is not used).
SELECT
    b.business_id,
    b.name,
    b.city,
    b.state,
    b.categories,
    COALESCE(r.review_count, 0) AS review_count,
    r.avg_stars,
    r.last_review_at
FROM businesses b
LEFT JOIN (
    SELECT business_id,
           count(*) AS review_count,
           avg(CAST(stars AS DOUBLE)) AS avg_stars,
           max("date") AS last_review_at
    FROM reviews
    GROUP BY business_id
) r ON r.business_id = b.business_id
