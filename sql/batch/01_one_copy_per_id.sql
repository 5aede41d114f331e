-- One row per id where the raw zone holds two copies of a record at the same Kafka partition and
-- offset: files of two incarnations of a topic partition (a broker reset with the raw zone kept,
-- the same data streamed again) overlap in their offset ranges, and the join of 00_views.sql then
-- gives such an id a row per copy. `lab batch` runs the statement of an entity only when its files
-- overlap (a DISTINCT ON costs another aggregation over every row), in the order businesses,
-- users, reviews. The copy kept is the first in the order of its columns, so the choice does not
-- depend on which file was read first.

CREATE OR REPLACE VIEW businesses AS
SELECT DISTINCT ON (business_id) business_id, name, city, state, categories
FROM business_copies
ORDER BY business_id, name, city, state;

CREATE OR REPLACE VIEW users AS
SELECT DISTINCT ON (user_id) user_id, elite
FROM user_copies
ORDER BY user_id;

CREATE OR REPLACE VIEW reviews AS
SELECT DISTINCT ON (review_id) review_id, user_id, business_id, stars, "date"
FROM review_copies
ORDER BY review_id, user_id, business_id, stars, "date";
