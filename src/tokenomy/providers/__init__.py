"""Translation between wire formats: pure functions and stream translators on parsed JSON.

The bridges of :mod:`tokenomy.wire` choose and run them; nothing here touches budgets,
the ledger or the network (the gateway orchestrates).
"""
