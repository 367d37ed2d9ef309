"""Load tests of a running headway service (``headway loadtest``) and process helpers."""
