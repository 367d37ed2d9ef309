"""Job store backends: memory, SQLite, Redis (registered in ``headway.jobs``)."""
