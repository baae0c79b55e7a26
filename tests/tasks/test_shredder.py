"""The detectors on synthetic steps (times injected: no sleeping), and the seam's walks."""

from __future__ import annotations

from tokenomy.tasks.shredder import Detector, Finding, Observation
from tokenomy.wire import ENDPOINTS
from tokenomy.wire.steps import TOOL_CALL, TOOL_ERROR, TOOL_RESULT, Fragment, digest


def _action(name: str, args: str, result: str, error: bool = False) -> list[Fragment]:
    kind = TOOL_ERROR if error else TOOL_RESULT
    return [
        Fragment(TOOL_CALL, name, digest([name, args]), len(args), "c"),
        Fragment(kind, "tool", digest(result), len(result), "c", result),
    ]


class Run:
    """One task fed step by step; ``gap_ms`` between one response and the next call."""

    def __init__(self, agent: str = "a", task: str = "t", detector: Detector | None = None):
        self.d = detector or Detector()
        self.st = self.d.state("acme", task, "research", agent)
        self.now = 1_000_000
        self.items = 2
        self.found: list[Finding] = []

    def step(
        self,
        fragments: list[Fragment],
        *,
        gap_ms: int = 10,
        inp: int = 100,
        out: int = 10,
        cached: int = 0,
        status: int = 200,
        grow: int = 2,
    ) -> set[str]:
        self.now += gap_ms
        self.items += grow
        ob = Observation(self.now, 50.0, status, "", self.items, fragments, inp, cached, out, 1000)
        self.now += 50
        new = self.d.observe(self.st, ob)
        self.found += new
        return {f.kind for f in new}

    @property
    def kinds(self) -> set[str]:
        return {f.kind for f in self.found}


def test_a_repeated_action_is_flagged_on_its_third_time_unless_the_agent_waits() -> None:
    loop = Run()
    assert loop.step(_action("search", "{}", "none")) == set()
    assert loop.step(_action("search", "{}", "none")) == set()
    assert loop.step(_action("search", "{}", "none")) == {"repeat_action"}
    [f] = loop.found
    assert f.tokens == 220 and f.cost_nanos == 2000  # the two repeats
    poll = Run()
    for _ in range(6):  # the same answer, but the agent waits 1 s between checks
        poll.step(_action("status", "{}", "running"), gap_ms=1_000)
    assert poll.kinds == set()


def test_a_cycle_of_three_actions_is_a_repeat_and_two_alternating_a_ping_pong() -> None:
    cycle = Run()
    for i in range(7):
        cycle.step(_action("t", str(i % 3), "same"))
    assert cycle.kinds == {"repeat_action"}
    pp = Run()
    for i in range(6):
        pp.step(_action("open", "ab"[i % 2], "x"))
    assert pp.kinds == {"ping_pong"}
    progress = Run()
    for i in range(12):  # the same call, a new result each time: progress
        progress.step(_action("status", "{}", f"{i * 10}%"))
    assert progress.kinds == set()


def test_repeated_errors_and_retry_storms() -> None:
    errors = Run()
    for i in range(3):
        errors.step(_action("read", str(i), "Error: denied", error=True))
    assert errors.kinds == {"repeat_error"}
    refused = Run()
    for _ in range(3):
        refused.step([], status=400)
    assert "repeat_error" in refused.kinds
    storm = Run()
    for _ in range(5):
        storm.step([], status=429, gap_ms=100)
    assert storm.kinds == {"retry_storm"}
    slow = Run()
    for _ in range(5):  # a minute apart: not a storm
        slow.step([Fragment("message", "user", 1, 5)], grow=0, gap_ms=61_000)
    assert slow.kinds == set()
    poller = Run()
    for _ in range(8):  # the same question every 2 s: polling
        poller.step([Fragment("message", "user", 1, 5)], grow=0, gap_ms=2_000)
    assert poller.kinds == set()
    hammer = Run()
    for _ in range(4):  # the same request back to back
        hammer.step([Fragment("message", "user", 1, 5)], grow=0)
    assert hammer.kinds == {"retry_storm"}


def test_context_bloat_says_what_caching_saves_and_when_it_cannot() -> None:
    run = Run()
    inp = 500
    for _ in range(7):
        run.step([], inp=inp, out=10)
        inp += 2_000
    [f] = run.found
    assert f.kind == "context_bloat"
    assert "minimum cacheable length (1,024 tokens)" in f.evidence  # the first re-send
    far = Run()
    inp = 3_000
    for _ in range(7):
        far.step([], inp=inp, gap_ms=400_000)
        inp += 2_000
    assert "further apart than the cache lifetime (300 s)" in far.found[0].evidence
    cached = Run()
    inp = 3_000
    for _ in range(10):  # cache hits: the prefix is not paid in full again
        cached.step([], inp=inp, cached=inp - 2_000)
        inp += 2_000
    assert cached.kinds == set()


def test_results_re_sent_inside_new_messages_are_bloat() -> None:
    run = Run()
    results = []
    for i in range(4):
        page = " ".join(f"w{i}_{j}" for j in range(1_500))
        results.append(page)
        again = "Everything so far, again:" + "".join(results[:-1])
        frags = [Fragment("message", "user", digest(again), len(again), "", again)]
        frags += _action("read", str(i), page)
        run.step(frags, inp=100 + i)  # slow growth: only the duplicates count
    assert run.kinds == {"context_bloat"}
    assert "re-sent inside new messages" in run.found[0].evidence


def test_tokens_far_above_the_agents_own_history() -> None:
    d = Detector()
    for n in range(5):
        run = Run(task=f"t{n}", detector=d)
        run.step([], inp=1_000)
        d.finish("acme", f"t{n}")
    big = Run(task="big", detector=d)
    for _ in range(3):
        big.step([], inp=4_000, grow=0, gap_ms=61_000)
    assert big.kinds == {"outlier_tokens"}
    other = Run(agent="b", task="b1", detector=d)  # another agent has no history
    other.step([], inp=50_000)
    assert other.kinds == set()


def test_the_seam_walks_each_format_from_where_the_last_step_ended() -> None:
    chat = ENDPOINTS["chat.completions"]
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "a.py"},
        ]
    }
    count, frags = chat.step_fragments(body, 1)
    assert count == 3 and [(f.kind, f.name, f.ref) for f in frags] == [
        ("tool_call", "ls", "c1"),
        ("tool_result", "tool", "c1"),
    ]
    assert chat.step_fragments(body, 3)[1][-1].kind == "tool_result"  # no growth: the last

    messages = ENDPOINTS["messages"]
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "u1", "name": "ls", "input": {"d": "."}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "u1", "is_error": True, "content": "no"}
                ],
            },
        ]
    }
    _, frags = messages.step_fragments(body, 1)
    assert [(f.kind, f.name, f.ref) for f in frags] == [
        ("tool_call", "ls", "u1"),
        ("tool_error", "user", "u1"),
    ]
    assert frags[0].digest == digest(["ls", {"d": "."}])

    responses = ENDPOINTS["responses"]
    body = {
        "input": [
            {"role": "user", "content": "go"},
            {"type": "function_call", "call_id": "f1", "name": "ls", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "f1", "output": "Error: gone"},
        ]
    }
    _, frags = responses.step_fragments(body, 0)
    assert [f.kind for f in frags] == ["message", "tool_call", "tool_error"]
    assert ENDPOINTS["embeddings"].step_fragments({"input": "x"}, 0) == (0, [])
