"""``HEADWAY_STORAGE_*``: S3 endpoint and credentials, CDN and signed-URL options.

Which store is used is the core ``HEADWAY_STORAGE_URL`` (``file:///dir`` or
``s3://bucket``; empty = ``file://<data_dir>/storage``); this section only configures it.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from headway.settings import register_section

MIB = 1024 * 1024


@register_section
class StorageSettings(BaseSettings):
    """Every storage setting; environment variables are ``HEADWAY_STORAGE_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWAY_STORAGE_", env_file=".env", extra="ignore", validate_default=True
    )

    endpoint: str = Field(
        "", description="S3 endpoint (MinIO, R2, moto); empty = AWS for the region."
    )
    region: str = Field("us-east-1", description="S3 region (`auto` for Cloudflare R2).")
    access_key_id: str = Field("", description="S3 access key id; empty = the AWS default chain.")
    secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    session_token: SecretStr | None = Field(None, description="S3 session token (optional).")
    cdn_base_url: str = Field(
        "", description="Base URL of a CDN in front of the store; public files get a cdn_url."
    )
    public_base_url: str = Field(
        "", description="Origin prefixed to file:// signed URLs; empty = a path (`/_headway/...`)."
    )
    chunk_size: int = Field(
        8 * MIB, ge=5 * MIB, le=512 * MIB, description="Bytes per streamed chunk / S3 part."
    )
    max_signed_expiry: int = Field(
        7 * 86400, ge=1, le=7 * 86400, description="Longest signed URL lifetime, seconds."
    )
