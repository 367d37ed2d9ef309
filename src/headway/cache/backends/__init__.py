"""L2 cache backends: memory, SQLite, Redis (registered in ``headway.cache``)."""
