"""The admin dashboard: server-rendered pages (Jinja2 + htmx) on the capabilities' public API.

``hw.install(app)`` mounts it at ``/admin/ui`` (``/admin`` redirects there) when
``HEADWAY_ADMIN_TOKEN`` is set; log in with that token or with the password whose hash is
``HEADWAY_DASHBOARD_PASSWORD_HASH`` (``python -m headway.dashboard hash-password``).
Every asset is packaged (htmx is vendored, charts are SVG drawn on the server): it works
offline, and every page reads without JavaScript.
"""

from __future__ import annotations

from headway.dashboard.core import PREFIX, Dashboard
from headway.dashboard.security import hash_password, verify_password
from headway.dashboard.settings import DashboardSettings

__all__ = ["PREFIX", "Dashboard", "DashboardSettings", "hash_password", "verify_password"]
