"""Provider adapters, one per wire format, and translation between the formats.

Adapters build the upstream request and read usage from responses; they never touch
budgets or the ledger (the gateway orchestrates).
"""
