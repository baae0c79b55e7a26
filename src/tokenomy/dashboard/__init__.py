"""The web dashboard at ``/dashboard``: spend, budgets, agents, the local lane and live
traffic, read from the ledger's rollups (``tokenomy.ledger.rollups``).

``tokenomy.dashboard.web.setup_dashboard`` mounts it on the gateway; sessions are in
``sessions.py``, the numbers in ``data.py``, the HTML in ``pages.py``, and every asset
(htmx, uPlot, the dashboard's own script and style) is vendored in ``static/``.
This module imports nothing: ``tokenomy.database`` reads ``dashboard.schema`` early.
"""
