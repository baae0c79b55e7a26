"""tokenomy: meter, price list, budget office, router and planning desk for the token economy."""

from __future__ import annotations

__version__ = "0.1.0"
