"""Tests of the raw store (journal/store/)."""
