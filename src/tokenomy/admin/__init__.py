"""The admin REST API: gateway API keys, budgets, rate limits and usage over JSON.

``setup_admin(app, store, settings)`` adds the routes to the gateway's aiohttp app;
admin keys are created with ``tokenomy admin create-key`` (``tokenomy.admin.keys``).
What a team-admin key may see and change is written down in ``tokenomy.admin.access``.
"""

from __future__ import annotations

from tokenomy.admin.api import setup_admin
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
    "authenticate",
    "create_admin_key",
    "list_admin_keys",
    "revoke_admin_key",
    "setup_admin",
]
