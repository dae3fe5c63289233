"""Results in ClickHouse: the schema and its migrations, the sink that fills it from Kafka, and
the query layer that reads it (per-second series, run summaries, live follow)."""
