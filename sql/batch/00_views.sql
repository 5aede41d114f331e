-- Deduplicated views over the raw zone (tables raw_<entity>, registered by `lab batch`).
-- Delivery into the raw zone is at-least-once, so the same record may be there twice (a producer
-- that was run twice, a transform that re-sent a batch after a crash). Every view keeps exactly one
-- copy per record id; copies are identical, the ORDER BY only makes the choice deterministic.

CREATE VIEW businesses AS
SELECT business_id, name, city, state, categories
FROM (
    SELECT *, row_number() OVER (PARTITION BY business_id ORDER BY _partition, _offset DESC) AS copy_no
    FROM raw_business
) WHERE copy_no = 1;

CREATE VIEW users AS
SELECT user_id, elite
FROM (
    SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY _partition, _offset DESC) AS copy_no
    FROM raw_user
) WHERE copy_no = 1;

CREATE VIEW reviews AS
SELECT review_id, user_id, business_id, stars, "date"
FROM (
    SELECT *, row_number() OVER (PARTITION BY review_id ORDER BY _partition, _offset DESC) AS copy_no
    FROM raw_review
) WHERE copy_no = 1;
