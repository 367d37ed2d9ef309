"""Storage backends: ``file://`` (local directory) and ``s3://`` (S3-compatible)."""
