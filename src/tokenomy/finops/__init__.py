"""FinOps: chargeback statements per team and month (``invoice``) and the ledger in the
FinOps FOCUS columns (``focus``, streamed by ``export``)."""
