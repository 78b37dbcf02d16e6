"""REST API (aiohttp app factory, GET /features/latest, dataset endpoints): arrives with the online shard."""
