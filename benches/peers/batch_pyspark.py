"""Peer: the serving-table SQL on PySpark local[2] — what the seed system runs, literally: the views
and serving queries are imported from jobs/batch_layer.py (the lab's PySpark twin), the raw zone is
read the same way, only the sink differs: each table is written as Parquet (like
`lab batch --parquet-out`), so the comparison is the engine, not PostgreSQL.

    spark-submit --master local[2] batch_pyspark.py RAW_ZONE_DIR OUT_DIR   → prints {"rows_in": N}
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "jobs"))

import batch_layer as seed  # noqa: E402  (the seed system's job)
from pyspark.sql import SparkSession  # noqa: E402


def main(raw_zone, out_dir):
    spark = SparkSession.builder.appName("bench-batch-pyspark").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    rows_in = 0
    try:
        for entity in seed.ENTITIES:
            df = seed.raw_table(spark, raw_zone, entity, None)
            if df is not None:
                if entity in seed.SERVING_INPUTS:
                    df = df.cache()
                rows_in += df.count()
            elif entity in seed.SERVING_INPUTS:
                df = seed.empty_raw_table(spark, entity)
            if entity in seed.SERVING_INPUTS:
                df.createOrReplaceTempView(f"raw_{entity}")
        for name, sql in seed.VIEWS.items():
            spark.sql(sql).createOrReplaceTempView(name)
        for name, (_keys, sql) in seed.SERVING.items():
            spark.sql(sql).write.mode("overwrite").parquet(os.path.join(out_dir, name))
    finally:
        spark.stop()
    print(json.dumps({"rows_in": rows_in}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
