"""Offline commands: replay, journal inspection and import, registry tools."""
