"""The admin REST API: gateway API keys, budgets, rate limits and usage over JSON.

``admin_app(store, settings)`` is the API as an aiohttp application of its own, and
``setup_admin(app, store, settings)`` mounts it on the gateway's app at ``/admin/v1``;
its tables are declared in ``tokenomy.admin.schema``;
admin keys are created with ``tokenomy admin create-key`` (``tokenomy.admin.keys``).
What a team-admin key may see and change is written down in ``tokenomy.admin.access``.
"""

from __future__ import annotations

from tokenomy.admin.api import admin_app, setup_admin
from tokenomy.admin.keys import (
    AdminKey,
    AdminPrincipal,
    authenticate,
    create_admin_key,
    list_admin_keys,
    revoke_admin_key,
)

__all__ = [
    "AdminKey",
    "AdminPrincipal",
    "admin_app",
    "authenticate",
    "create_admin_key",
    "list_admin_keys",
    "revoke_admin_key",
    "setup_admin",
]
