"""The raw store: the journal compacted to Hive-partitioned Parquet tables (SPEC §4)."""
