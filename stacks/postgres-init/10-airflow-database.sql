-- Run once by the postgres image's entrypoint when the data volume is first initialised
-- (POSTGRES_DB already created `yelp`, the serving database): Airflow's metadata database.
CREATE DATABASE airflow;
