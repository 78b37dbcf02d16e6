"""Datasets: labelled Parquet training sets rebuilt from the store through the one engine."""
