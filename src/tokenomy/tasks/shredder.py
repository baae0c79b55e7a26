"""Catching the token shredder: loop, bloat and storm detectors over what each step adds.

Fed one :class:`Observation` per call of a task (its new fragments, hashed by the wire
seam before the upstream was called, and its usage, status and cost once recorded), the
:class:`Detector` keeps a small state per task and says when a task starts burning tokens
without progress. Each kind is reported once per task.

Kinds (thresholds below):

* ``repeat_action`` — the same tool call (name + arguments) with the same result a third
  time among the last 12 actions: a loop of one action, or a cycle of up to four
  (flagged within 4 repeats).
* ``repeat_error`` — the same tool error, or the same refusal of the call itself, 3 times.
* ``ping_pong`` — two actions alternating, A B A B A B.
* ``context_bloat`` — the input grows step after step with re-sent content and no cache
  hits: either a re-sent prefix (6+ growing steps, 200+ new tokens a step on average,
  8,192+ tokens re-sent) or earlier results re-sent inside new messages (2,048+ tokens in
  3+ steps). The evidence says what prompt caching would save at the model's cache price,
  and where it cannot help (a prefix below the provider's minimum cacheable length, steps
  further apart than the cache lifetime, content re-sent inside new messages).
* ``retry_storm`` — the identical request sent 4 times within a minute with no wait in
  between, or 5 failed calls within a minute.
* ``outlier_tokens`` — a task past 5x the median tokens of the same agent's finished
  tasks (at least 5 of them, and 10,000 tokens).

Legitimate polling is not a loop: a repeated call whose result changes is progress, and
an agent that waits ``POLL_WAIT_MS`` or more before calling again is waiting, not looping.

The state is per process: with several replicas each sees the calls it serves (agents
that keep one connection stay on one replica).
"""

from __future__ import annotations

import statistics
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tokenomy.money import decimal_str, nanos_to_usd
from tokenomy.wire.steps import MESSAGE, TOOL_CALL, TOOL_ERROR, TOOL_RESULT, Fragment

KINDS = (
    "repeat_action",
    "repeat_error",
    "ping_pong",
    "context_bloat",
    "retry_storm",
    "outlier_tokens",
)
REPEAT_RUN = 3  # the same action (call and result) among the last ACTION_WINDOW
ACTION_WINDOW = 12
REPEAT_ERRORS = 3
PING_PONG_LEN = 6  # A B A B A B
BLOAT_STEPS = 6
BLOAT_MIN_GROWTH = 200  # average new tokens per step
BLOAT_MIN_RESENT = 8_192
# Earlier content re-sent inside new messages (recognised by DUP_HEAD_CHARS from the
# middle of each long text seen in the task).
DUP_MIN_CHARS = 256
DUP_HEAD_CHARS = 64
DUP_HEADS = 32
DUP_MIN_TOKENS = 2_048
DUP_MIN_STEPS = 3
RETRY_SAME = 4
RETRY_FAILS = 5
STORM_WINDOW_MS = 60_000
OUTLIER_FACTOR = 5
OUTLIER_HISTORY = 5
OUTLIER_MIN_TOKENS = 10_000
POLL_WAIT_MS = 1_000
MAX_TASKS = 20_000  # task states kept per process (least recently used dropped)
_RETRYABLE = frozenset({408, 409, 429, 499, 500, 502, 503, 504, 529})


@dataclass(slots=True)
class Observation:
    """One call of a task, as the detector sees it."""

    ts_ms: int
    latency_ms: float
    status: int
    error_kind: str
    items: int  # conversation items the request held
    fragments: list[Fragment]
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost_nanos: int
    cache_min_tokens: int = 1024
    cache_ttl_ms: int = 300_000
    # What serving ``n`` of this call's input tokens from the cache would have saved.
    saving: Callable[[int], int] | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Finding:
    org: str
    task: str
    team: str
    agent: str
    kind: str
    evidence: str
    tokens: int  # tokens at stake
    cost_nanos: int  # cost at stake (context_bloat: what caching would have saved)
    ts_ms: int


@dataclass(slots=True)
class _Action:
    name: str
    key: tuple[int, int]  # (call digest, result digest)
    error: bool
    tokens: int
    cost: int


@dataclass(slots=True)
class _Step:
    ts_ms: int
    end_ms: int
    input_tokens: int
    resent: int
    saving: Callable[[int], int] | None
    cache_min: int
    cache_ttl_ms: int


@dataclass(slots=True)
class TaskState:
    org: str
    task: str
    team: str
    agent: str
    seen: int = 0  # conversation items of the last request
    calls: int = 0
    tokens: int = 0
    cost: int = 0
    last_end_ms: int = 0
    prev_tokens: tuple[int, int] = (0, 0)  # (input, output) of the previous call
    open_calls: dict[str, tuple[str, int]] = field(default_factory=dict)
    actions: deque[_Action] = field(default_factory=lambda: deque(maxlen=ACTION_WINDOW))
    heads: dict[str, int] = field(default_factory=dict)  # first chars of long texts → tokens
    dup_tokens: int = 0  # earlier content re-sent inside new messages
    dup_steps: int = 0
    errors: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    requests: dict[tuple[int, int], deque[int]] = field(default_factory=dict)
    fails: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=RETRY_FAILS))
    growth: list[_Step] = field(default_factory=list)
    resent: int = 0  # tokens re-sent over the steps in ``growth``
    flagged: set[str] = field(default_factory=set)


def _usd(nanos: int) -> str:
    return "$" + decimal_str(nanos_to_usd(nanos))


class Detector:
    """Per-task detector state of one process; ``observe`` returns new findings."""

    def __init__(self, max_tasks: int = MAX_TASKS) -> None:
        self.tasks: OrderedDict[tuple[str, str], TaskState] = OrderedDict()
        self.history: dict[str, deque[int]] = {}  # agent → tokens of its finished tasks
        self.max_tasks = max_tasks
        self._now = 0

    def state(self, org: str, task: str, team: str = "", agent: str = "") -> TaskState:
        key = (org, task)
        st = self.tasks.get(key)
        if st is None:
            st = self.tasks[key] = TaskState(org, task, team, agent)
            while len(self.tasks) > self.max_tasks:
                _, old = self.tasks.popitem(last=False)
                self._remember(old)
        else:
            self.tasks.move_to_end(key)
        return st

    def seen(self, org: str, task: str) -> int:
        """Conversation items the task's last request held (where the new ones start)."""
        st = self.tasks.get((org, task))
        return st.seen if st is not None else 0

    def finish(self, org: str, task: str) -> None:
        """The task ended (its outcome came in): its tokens join the agent's history."""
        st = self.tasks.pop((org, task), None)
        if st is not None:
            self._remember(st)

    def _remember(self, st: TaskState) -> None:
        if st.agent and st.tokens:
            self.history.setdefault(st.agent, deque(maxlen=50)).append(st.tokens)

    # -- one call ------------------------------------------------------------------------
    def observe(self, st: TaskState, ob: Observation) -> list[Finding]:
        out: list[Finding] = []
        self._now = ob.ts_ms + round(ob.latency_ms)
        waited = bool(st.calls) and ob.ts_ms - st.last_end_ms >= POLL_WAIT_MS
        st.calls += 1
        st.tokens += ob.tokens
        st.cost += ob.cost_nanos
        grew = ob.items > st.seen
        st.seen = ob.items
        self._actions(st, ob, waited, out)
        self._retries(st, ob, waited, out)
        self._bloat(st, ob, grew, out)
        self._outlier(st, ob, out)
        st.prev_tokens = (ob.input_tokens, ob.output_tokens)
        st.last_end_ms = ob.ts_ms + round(ob.latency_ms)
        return out

    def _flag(
        self, st: TaskState, out: list[Finding], kind: str, evidence: str, tokens: int, cost: int
    ) -> None:
        if kind in st.flagged:
            return
        st.flagged.add(kind)
        out.append(
            Finding(st.org, st.task, st.team, st.agent, kind, evidence, tokens, cost, self._now)
        )

    def _actions(self, st: TaskState, ob: Observation, waited: bool, out: list[Finding]) -> None:
        for f in ob.fragments:
            if f.kind == TOOL_CALL:
                st.open_calls[f.ref or f.name] = (f.name, f.digest)
                if len(st.open_calls) > 64:
                    st.open_calls.pop(next(iter(st.open_calls)))
                continue
            if f.kind not in (TOOL_RESULT, TOOL_ERROR):
                continue
            call = st.open_calls.pop(f.ref, None) if f.ref else None
            if call is None and st.open_calls:
                call = st.open_calls.pop(next(reversed(st.open_calls)))
            name, call_digest = call if call is not None else ("?", 0)
            action = _Action(name, (call_digest, f.digest), f.kind == TOOL_ERROR, ob.tokens, 0)
            action.cost = ob.cost_nanos
            self._one_action(st, action, waited, out)
        if ob.status >= 400 and ob.status not in _RETRYABLE:
            # The call itself refused (a bad request sent again and again).
            key = ("call:" + ob.error_kind, ob.status)
            self._error(st, key, f"HTTP {ob.status} {ob.error_kind}", ob, out)

    def _one_action(self, st: TaskState, a: _Action, waited: bool, out: list[Finding]) -> None:
        if waited:  # the agent waited before this call: polling, not looping
            st.actions.clear()
        st.actions.append(a)
        if a.error:
            self._error(st, (a.name, a.key[1]), f"tool {a.name!r} failed", None, out, a)
        if self._ping_pong(st, out):
            return  # two actions alternating are a ping-pong, not a repeat
        # The same action again among the last few: a loop of one action, or a cycle of up
        # to four (an agent whose next call follows from the last result cycles like that).
        same = [x for x in st.actions if x.key == a.key]
        if len(same) >= REPEAT_RUN:
            self._flag(
                st,
                out,
                "repeat_action",
                f"tool {a.name!r} called {len(same)} times with the same arguments and the "
                f"same result within the last {len(st.actions)} actions",
                sum(x.tokens for x in same[1:]),
                sum(x.cost for x in same[1:]),
            )

    def _error(
        self,
        st: TaskState,
        key: tuple[str, int],
        what: str,
        ob: Observation | None,
        out: list[Finding],
        action: _Action | None = None,
    ) -> None:
        tokens = action.tokens if action is not None else (ob.tokens if ob else 0)
        cost = action.cost if action is not None else (ob.cost_nanos if ob else 0)
        seen = st.errors.get(key)
        if seen is None:
            if len(st.errors) >= 64:
                return
            seen = st.errors[key] = [0, 0, 0]
        seen[0] += 1
        if seen[0] > 1:  # the first error is information; the repeats are waste
            seen[1] += tokens
            seen[2] += cost
        if seen[0] >= REPEAT_ERRORS:
            self._flag(
                st,
                out,
                "repeat_error",
                f"{what} with the same error {seen[0]} times",
                seen[1],
                seen[2],
            )

    def _ping_pong(self, st: TaskState, out: list[Finding]) -> bool:
        """True while the last actions alternate between two (A B A B ...)."""
        acts = list(st.actions)
        if len(acts) < 4:
            return False
        a, b = acts[-2].key, acts[-1].key
        if a == b:
            return False
        n = 0
        for i, act in enumerate(reversed(acts)):
            if act.key != (b if i % 2 == 0 else a):
                break
            n += 1
        if n < 4:
            return False
        if n >= PING_PONG_LEN:
            tail = acts[-n:]
            self._flag(
                st,
                out,
                "ping_pong",
                f"tools {acts[-2].name!r} and {acts[-1].name!r} alternating {n // 2} times "
                "with the same arguments and results",
                sum(x.tokens for x in tail[2:]),
                sum(x.cost for x in tail[2:]),
            )
        return True

    def _retries(self, st: TaskState, ob: Observation, waited: bool, out: list[Finding]) -> None:
        last = ob.fragments[-1].digest if ob.fragments else 0
        sig = (ob.items, last)
        times = st.requests.get(sig)
        if times is None:
            if len(st.requests) >= 256:
                st.requests.pop(next(iter(st.requests)))
            times = st.requests[sig] = deque(maxlen=RETRY_SAME)
        if waited:  # asking the same again after a wait is polling, not a storm
            times.clear()
        times.append(ob.ts_ms)
        if len(times) == RETRY_SAME and times[-1] - times[0] <= STORM_WINDOW_MS:
            self._flag(
                st,
                out,
                "retry_storm",
                f"the same request sent {RETRY_SAME} times within "
                f"{(times[-1] - times[0]) / 1000:.1f} s",
                ob.tokens * (RETRY_SAME - 1),
                ob.cost_nanos * (RETRY_SAME - 1),
            )
        if ob.status >= 400:
            st.fails.append((ob.ts_ms, ob.tokens, ob.cost_nanos))
            f = st.fails
            if len(f) == RETRY_FAILS and f[-1][0] - f[0][0] <= STORM_WINDOW_MS:
                self._flag(
                    st,
                    out,
                    "retry_storm",
                    f"{RETRY_FAILS} failed calls within {(f[-1][0] - f[0][0]) / 1000:.1f} s "
                    f"(last: HTTP {ob.status} {ob.error_kind})",
                    sum(x[1] for x in f),
                    sum(x[2] for x in f),
                )

    def _duplicates(self, st: TaskState, ob: Observation, grew: bool) -> int:
        """Tokens of earlier long texts (results, messages) re-sent inside new ones."""
        if not grew:  # nothing new: the same request again (a retry's business)
            return 0
        dup = 0
        new: list[tuple[str, int]] = []
        for f in ob.fragments:
            t = f.text
            if len(t) < DUP_MIN_CHARS:
                continue
            if f.kind == MESSAGE:  # a result repeated is repeat_action's business
                for head, tokens in st.heads.items():
                    if head in t:
                        dup += tokens
            mid = len(t) // 2  # the middle: a text's start is often boilerplate
            new.append((t[mid : mid + DUP_HEAD_CHARS], f.size // 4))
        for head, tokens in new:
            st.heads.setdefault(head, tokens)
            if len(st.heads) > DUP_HEADS:
                st.heads.pop(next(iter(st.heads)))
        return dup

    def _bloat(self, st: TaskState, ob: Observation, grew: bool, out: list[Finding]) -> None:
        if ob.status >= 400 or ob.input_tokens == 0 or "context_bloat" in st.flagged:
            return
        dup = self._duplicates(st, ob, grew)
        if dup:
            st.dup_tokens += dup
            st.dup_steps += 1
        prev_in, prev_out = st.prev_tokens
        end_ms = ob.ts_ms + round(ob.latency_ms)
        if ob.cached_tokens > 0 or not st.growth or ob.input_tokens <= prev_in:
            # A cache hit, or a context that did not grow: a new run starts here.
            first = _Step(ob.ts_ms, end_ms, ob.input_tokens, 0, None, 0, 0)
            st.growth = [] if ob.cached_tokens > 0 else [first]
            st.resent = 0
            return
        resent = min(prev_in + prev_out, ob.input_tokens)
        st.growth.append(
            _Step(
                ob.ts_ms,
                end_ms,
                ob.input_tokens,
                resent,
                ob.saving,
                ob.cache_min_tokens,
                ob.cache_ttl_ms,
            )
        )
        st.resent += resent
        if len(st.growth) > 256:
            st.resent -= st.growth.pop(1).resent
        n = len(st.growth) - 1
        resent_total = st.resent
        growth = (st.growth[-1].input_tokens - st.growth[0].input_tokens) / n
        duplicated = st.dup_tokens >= DUP_MIN_TOKENS and st.dup_steps >= DUP_MIN_STEPS
        uncached = (
            n >= BLOAT_STEPS - 1 and resent_total >= BLOAT_MIN_RESENT and growth >= BLOAT_MIN_GROWTH
        )
        if not (duplicated or uncached):
            return
        steps = st.growth[1:]
        saving, small, far = 0, 0, 0
        prev_end = st.growth[0].end_ms
        for s in steps:
            if s.resent < s.cache_min:
                small += 1
            elif s.ts_ms - prev_end > s.cache_ttl_ms:
                far += 1
            elif s.saving is not None:
                saving += max(0, s.saving(s.resent))
            prev_end = s.end_ms
        first, last = st.growth[0], st.growth[-1]
        notes = [
            f"input grew from {first.input_tokens:,} to {last.input_tokens:,} tokens over "
            f"{len(st.growth)} steps, re-sending {resent_total:,} tokens with no cache hits"
        ]
        if st.dup_tokens:
            notes.append(
                f"about {st.dup_tokens:,} tokens of earlier results re-sent inside new "
                f"messages in {st.dup_steps} step(s) (no cache can help those: send them once)"
            )
        notes.append(f"prompt caching would save {_usd(saving)} at the model's cache price")
        if small:
            notes.append(
                f"caching cannot help {small} step(s): their repeated prefix is below the "
                f"provider's minimum cacheable length ({steps[0].cache_min:,} tokens)"
            )
        if far:
            notes.append(
                f"caching cannot help {far} step(s): they came further apart than the cache "
                f"lifetime ({steps[0].cache_ttl_ms / 1000:g} s)"
            )
        tokens = resent_total + st.dup_tokens
        self._flag(st, out, "context_bloat", "; ".join(notes), tokens, saving)

    def _outlier(self, st: TaskState, ob: Observation, out: list[Finding]) -> None:
        past = self.history.get(st.agent) if st.agent else None
        if not past or len(past) < OUTLIER_HISTORY or st.tokens < OUTLIER_MIN_TOKENS:
            return
        median = statistics.median(past)
        if st.tokens > OUTLIER_FACTOR * median:
            share = (st.tokens - int(median)) / st.tokens
            self._flag(
                st,
                out,
                "outlier_tokens",
                f"{st.tokens:,} tokens so far, {st.tokens / max(median, 1):.1f}x the median "
                f"of agent {st.agent!r}'s last {len(past)} tasks ({int(median):,} tokens)",
                st.tokens - int(median),
                int(st.cost * share),
            )


__all__ = ["KINDS", "Detector", "Finding", "Observation", "TaskState"]
