"""``tokenomy simulate``: a fleet of simulated agents driving a gateway.

* :mod:`~tokenomy.simulate.profiles` — what each profile's tasks look like, the shredders.
* :mod:`~tokenomy.simulate.agent` — one task: Plan → Act → Observe → Reflect over the chat API.
* :mod:`~tokenomy.simulate.fleet` — many agents for a while, and the summary of the run.

The simulated model the agents usually talk to is :mod:`tokenomy.simulated`.
"""

from __future__ import annotations

from tokenomy.simulate.fleet import FleetError, FleetOptions, run, summary

__all__ = ["FleetError", "FleetOptions", "run", "summary"]
