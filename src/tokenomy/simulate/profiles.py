"""What each simulated agent does: task shapes per profile, and the shredder behaviours.

Token volumes per task (measured against the sample config's ``simulated`` model,
150-token answers; the context grows by appending, so input dominates):

==========  =============================================  ====================
profile     shape                                          tokens per task
==========  =============================================  ====================
chat        1-3 turns, no tools                            ~1k
moderate    plan, 8 x (act → tool → observe), reflects     ~100k
complex     plan, 30 iterations, 2 sub-agents, reflects    > 1M
itinerary   plan, 24 iterations, 2 sub-agents (flights,    ~930k
            hotels), reflects
polling     submit a job, then check its status every      ~5k
            1.2 s until it is done (legitimate polling)
==========  =============================================  ====================

Shredders (``--shredder``: every other agent, kinds in turn):

* ``loop`` — after two healthy iterations it calls the same tool with the same arguments
  and gets the same result, over and over, never observing (``repeat_action``).
* ``bloat`` — each step rewrites the top of its prompt (the system message) with every
  earlier tool result: the input grows much faster than the work, all of it re-sent, and
  the prompt cache never hits (``context_bloat``).
* ``storm`` — sends each act request 6 times back to back with no backoff, as a client
  retrying on its own timeouts does (``retry_storm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SHREDDER_KINDS = ("loop", "bloat", "storm")
STORM_BURST = 6
LOOP_ITERATIONS = 12


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    iterations: int  # act → tool → observe rounds (chat: user turns)
    system_tokens: int  # size of the system prompt (tool descriptions, instructions)
    result_tokens: int  # size of one tool observation
    reflect_every: int  # a reflect step after every N iterations (0: never)
    sub_agents: int  # sub-tasks spawned half way (linked with X-Tokenomy-Parent-Task)
    success_rate: Decimal  # share of finished tasks that succeed
    value_usd: Decimal  # business value of a successful task
    tools: bool = True
    poll_wait_s: float = 0.0  # polling: wait between status checks
    max_tokens: int = 512  # output cap per call


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("chat", 3, 150, 0, 0, 0, Decimal("0.95"), Decimal("0.02"), tools=False),
        Profile("moderate", 8, 1500, 800, 3, 0, Decimal("0.85"), Decimal("2.00")),
        Profile("complex", 30, 3000, 1500, 5, 2, Decimal("0.70"), Decimal("25.00")),
        Profile("itinerary", 24, 2500, 1000, 4, 2, Decimal("0.80"), Decimal("12.00")),
        Profile("polling", 5, 300, 20, 0, 0, Decimal("0.90"), Decimal("0.50"), poll_wait_s=1.2),
    )
}
# Sub-agents of complex and itinerary tasks: short tool loops of their own.
SUB_AGENT = Profile("sub-agent", 3, 800, 600, 0, 0, Decimal("0.90"), Decimal("0"))
SUB_AGENT_NAMES = ("flights", "hotels", "research", "review")


def _tool(name: str, description: str, **params: str) -> dict[str, Any]:
    props = {k: {"type": "string", "description": v} for k, v in params.items()}
    schema = {"type": "object", "properties": props, "required": list(props)}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": schema},
    }


TOOLS: list[dict[str, Any]] = [
    _tool("search", "Search the web and return the top results.", query="what to search for"),
    _tool("read_file", "Read a file of the workspace.", path="path of the file"),
    _tool("run_tests", "Run the test suite and report failures.", target="tests to run"),
    _tool("book", "Book a flight, hotel or restaurant.", item="what to book", date="when"),
]
POLL_TOOLS: list[dict[str, Any]] = [
    _tool("submit_job", "Start a long-running report job.", report="the report to build"),
    {
        "type": "function",
        "function": {
            "name": "check_status",
            "description": "Status of the running job.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]
