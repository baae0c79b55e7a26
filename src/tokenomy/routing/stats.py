"""What the gateway measures per deployment: calls in flight, time to first token, speed.

Moving averages (EWMA) of time to first token and output tokens per second, from the
gateway's own clock; ``fastest`` ranks on them and ``least-busy`` on calls in flight.
"""

from __future__ import annotations

ALPHA = 0.2  # weight of the newest sample
# ``fastest`` ranks by the expected time of a reply of this many output tokens.
REFERENCE_OUTPUT_TOKENS = 256


class Stats:
    __slots__ = ("in_flight", "samples", "tps", "ttft_s")

    def __init__(self) -> None:
        self.in_flight = 0
        self.ttft_s = 0.0
        self.tps = 0.0
        self.samples = 0

    def observe(self, ttft_s: float, output_tokens: int, generation_s: float) -> None:
        """One successful call: its time to first token and its output rate."""
        if self.samples == 0:
            self.ttft_s = ttft_s
        else:
            self.ttft_s += ALPHA * (ttft_s - self.ttft_s)
        if output_tokens > 1 and generation_s > 0:
            rate = output_tokens / generation_s
            self.tps = rate if self.tps == 0 else self.tps + ALPHA * (rate - self.tps)
        self.samples += 1

    def expected_s(self) -> float:
        """Expected seconds for a reference reply; 0 while unmeasured (so it is tried)."""
        if self.samples == 0:
            return 0.0
        gen = REFERENCE_OUTPUT_TOKENS / self.tps if self.tps > 0 else 0.0
        return self.ttft_s + gen
