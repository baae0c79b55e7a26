"""Measure a token factory the way InferenceX does: fixed lengths, concurrency sweep, $/Mtok.

For each concurrency level, ``conc`` clients send streaming ``/v1/completions`` requests
back to back for ``duration`` seconds: prompts of exactly ``isl`` tokens (built with the
server's own ``/tokenize`` where it has one), ``max_tokens = osl`` with ``ignore_eos``
(where the server accepts it), temperature 0, prompt caching off, and usage requested in
the stream. A point reports (InferenceX's keys; latencies in seconds, throughputs in
tokens/s per GPU, interactivity in tokens/s per user = 1 / TPOT):

    tput_per_gpu  output_tput_per_gpu  input_tput_per_gpu
    median_ttft  p99_ttft  median_tpot  median_intvty  p99_intvty  median_e2el

and, with a factory profile (:mod:`tokenomy.economics.profiles`), what a token costs
while the machine serves at that point: ``usd_per_mtok_total`` (all tokens),
``usd_per_mtok_output`` (output tokens carry the whole cost), ``tok_s_per_mw``,
``j_per_token``. Like InferenceX, these assume the machine is busy all hour (no
utilization factor); the gateway's factory prices apply the profile's utilization.

A point with failed requests, empty streams or outputs shorter than ``osl`` is *flagged*:
it is reported with its reasons, but left out of the Pareto frontier and never saved.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tokenomy.economics.decimals import MILLION, SECONDS_PER_HOUR, out
from tokenomy.economics.factory import factory_cost
from tokenomy.economics.profiles import FactoryProfile, validate_factory_table

_WORDS = [
    "amber",
    "basin",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "granite",
    "harbor",
    "island",
    "juniper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "orchard",
    "prairie",
    "quartz",
    "river",
    "summit",
    "tundra",
    "upland",
    "valley",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
    "anchor",
    "beacon",
    "canyon",
    "dune",
    "estuary",
    "forest",
    "glacier",
    "heath",
    "inlet",
    "jetty",
    "knoll",
    "ledge",
]


@dataclass(slots=True)
class RequestResult:
    """One streamed request: what came back and when (seconds from its start)."""

    ok: bool
    error: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    chunks: int = 0  # stream events that carried text
    ttft: float | None = None
    e2el: float = 0.0
    usage_reported: bool = False

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first (seconds)."""
        if self.ttft is None or self.output_tokens < 2:
            return None
        return (self.e2el - self.ttft) / (self.output_tokens - 1)


@dataclass(slots=True)
class Point:
    """All requests of one concurrency level, and the level's wall time."""

    conc: int
    isl: int
    osl: int
    results: list[RequestResult] = field(default_factory=list)
    wall: float = 0.0

    @property
    def flags(self) -> list[str]:
        """Why this point must not be trusted (empty when it can be)."""
        reasons = []
        errors = [r for r in self.results if not r.ok]
        if errors:
            reasons.append(f"{len(errors)} failed request(s): {errors[0].error[:120]}")
        done = [r for r in self.results if r.ok]
        if any(r.chunks == 0 for r in done):
            reasons.append(f"{sum(r.chunks == 0 for r in done)} empty stream(s)")
        short = [r for r in done if r.chunks and r.output_tokens < self.osl]
        if short:
            reasons.append(
                f"{len(short)} output(s) shorter than osl={self.osl} "
                f"(min {min(r.output_tokens for r in short)}; does the server honour ignore_eos?)"
            )
        if not self.results:
            reasons.append("no request completed")
        return reasons

    def metrics(self, gpus: int = 1) -> dict[str, Any]:
        """InferenceX-style numbers (floats: measurements, not money)."""
        done = [r for r in self.results if r.ok]
        wall = self.wall or 1e-9
        inp = sum(r.input_tokens for r in done)
        outp = sum(r.output_tokens for r in done)
        ttfts = [r.ttft for r in done if r.ttft is not None]
        tpots = [t for r in done if (t := r.tpot) is not None and t > 0]
        intvty = [1 / t for t in tpots]
        p99_tpot = percentile(tpots, 99)
        return {
            "conc": self.conc,
            "isl": self.isl,
            "osl": self.osl,
            "requests": len(self.results),
            "measured_isl": _r(median([float(r.input_tokens) for r in done])),
            "measured_osl": _r(median([float(r.output_tokens) for r in done])),
            "duration": _r(self.wall),
            "tput_per_gpu": _r((inp + outp) / wall / gpus),
            "output_tput_per_gpu": _r(outp / wall / gpus),
            "input_tput_per_gpu": _r(inp / wall / gpus),
            "median_ttft": _r(median(ttfts)),
            "p99_ttft": _r(percentile(ttfts, 99)),
            "median_tpot": _r(median(tpots)),
            "median_intvty": _r(median(intvty)),
            # The interactivity 99% of requests meet or beat: 1 / p99 TPOT.
            "p99_intvty": _r(1 / p99_tpot if p99_tpot else None),
            "median_e2el": _r(median([r.e2el for r in done])),
            "flagged": bool(self.flags),
            "flags": self.flags,
        }


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def point_costs(metrics: dict[str, Any], profile: FactoryProfile | None) -> dict[str, Any]:
    """$/Mtok, tokens/s per MW and J/token of a point on ``profile``'s hardware (Decimal)."""
    keys = ("usd_per_mtok_total", "usd_per_mtok_output", "tok_s_per_mw", "j_per_token")
    costs: dict[str, Any] = dict.fromkeys(keys)
    if profile is None:
        return costs
    per_gpu_hour = factory_cost(profile).cost_per_gpu_hour
    kw = profile.all_in_kw
    for key, tput_key in (("total", "tput_per_gpu"), ("output", "output_tput_per_gpu")):
        tput = metrics.get(tput_key)
        if tput:
            tokens_per_hour = Decimal(str(tput)) * SECONDS_PER_HOUR
            costs[f"usd_per_mtok_{key}"] = out(per_gpu_hour / (tokens_per_hour / MILLION))
    tput = metrics.get("tput_per_gpu")
    if tput and kw > 0:
        d = Decimal(str(tput))
        costs["tok_s_per_mw"] = out(d * 1000 / kw)
        costs["j_per_token"] = out(kw * 1000 / d)
    return costs


def pareto(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unflagged rows not beaten on both throughput per GPU and interactivity, by interactivity."""
    good = [r for r in rows if not r["flagged"] and r["tput_per_gpu"] and r["median_intvty"]]
    front = [
        r
        for r in good
        if not any(
            o["tput_per_gpu"] >= r["tput_per_gpu"]
            and o["median_intvty"] >= r["median_intvty"]
            and (o["tput_per_gpu"], o["median_intvty"]) != (r["tput_per_gpu"], r["median_intvty"])
            for o in good
        )
    ]
    return sorted(front, key=lambda r: r["median_intvty"])


def best_point(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The unflagged row with the highest total throughput: the factory's capacity."""
    good = [r for r in rows if not r["flagged"] and r["tput_per_gpu"]]
    return max(good, key=lambda r: r["tput_per_gpu"]) if good else None


# ---------------------------------------------------------------------------- the client


class Bench:
    """A benchmark client for one OpenAI-compatible endpoint (``.../v1`` or its root)."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        root = endpoint.rstrip("/")
        self.v1 = root if root.endswith("/v1") else root + "/v1"
        self.root = self.v1[: -len("/v1")]
        self.model = model
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.extras: dict[str, Any] = {"ignore_eos": True, "cache_prompt": False}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.session: aiohttp.ClientSession | None = None
        self.exact_prompts = False

    async def __aenter__(self) -> Bench:
        self.session = aiohttp.ClientSession(
            timeout=self.timeout,
            # A fresh connection per request: llama.cpp's HTTP server drops idle
            # kept-alive connections, and a write into one would count as a failure.
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        assert self.session is not None
        async with self.session.post(url, data=orjson.dumps(body), headers=self.headers) as resp:
            raw = await resp.read()
            try:
                return resp.status, orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return resp.status, None

    # -- prompts -------------------------------------------------------------------------
    async def _tokenize(self, text: str) -> list[int] | None:
        try:
            status, data = await self._post(
                self.root + "/tokenize", {"content": text, "add_special": False}
            )
        except aiohttp.ClientError:
            return None
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            return None
        return [t if isinstance(t, int) else int(t["id"]) for t in data["tokens"]]

    async def _detokenize(self, ids: list[int]) -> str | None:
        status, data = await self._post(self.root + "/detokenize", {"tokens": ids})
        if status != 200 or not isinstance(data, dict):
            return None
        content = data.get("content")
        return content if isinstance(content, str) else None

    async def prompts(self, isl: int, count: int, seed: int = 0) -> list[str]:
        """``count`` distinct prompts of ``isl`` tokens (BOS included) each.

        Exact with the server's ``/tokenize`` and ``/detokenize`` (llama.cpp); otherwise
        sized from a probe request's reported ``prompt_tokens`` (approximate; every
        request's real input length is measured from its usage anyway).
        """
        rnd = random.Random(seed)
        bos = await self._bos_tokens()
        want = max(isl - bos, 1)
        texts = [" ".join(rnd.choice(_WORDS) for _ in range(want * 2 + 8)) for _ in range(count)]
        exact: list[str] = []
        for text in texts:
            built = await self._exact_text(text, want)
            if built is None:
                break
            exact.append(built)
        if len(exact) == count:
            self.exact_prompts = True
            return exact
        return await self._probe_sized(texts, isl)

    async def _bos_tokens(self) -> int:
        try:
            status, data = await self._post(
                self.root + "/tokenize", {"content": "a", "add_special": True}
            )
        except aiohttp.ClientError:
            return 0
        plain = await self._tokenize("a")
        if status != 200 or plain is None or not isinstance(data, dict):
            return 0
        return max(len(data.get("tokens") or ()) - len(plain), 0)

    async def _exact_text(self, text: str, want: int) -> str | None:
        ids = await self._tokenize(text)
        if ids is None or len(ids) < want:
            return None
        for trim in range(want, max(want - 8, 0), -1):
            candidate = await self._detokenize(ids[:trim])
            if candidate is None:
                return None
            again = await self._tokenize(candidate)
            if again is not None and len(again) == want:
                return candidate
            if again is not None and len(again) < want:
                break
        return None

    async def _probe_sized(self, texts: list[str], isl: int) -> list[str]:
        words = max(isl // 2, 1)
        for _ in range(3):
            probe = " ".join(texts[0].split()[:words])
            status, data = await self._post(
                self.v1 + "/completions",
                {"model": self.model, "prompt": probe, "max_tokens": 1, "temperature": 0},
            )
            usage = data.get("usage") if isinstance(data, dict) else None
            if status != 200 or not isinstance(usage, dict) or not usage.get("prompt_tokens"):
                break
            words = max(round(words * isl / usage["prompt_tokens"]), 1)
        return [" ".join(t.split()[:words]) for t in texts]

    # -- requests ------------------------------------------------------------------------
    async def check_extras(self) -> None:
        """Drop ``ignore_eos`` / ``cache_prompt`` if the server refuses unknown fields."""
        status, _ = await self._post(
            self.v1 + "/completions",
            {"model": self.model, "prompt": "a", "max_tokens": 1, **self.extras},
        )
        if status == 400:
            self.extras = {}

    async def request(self, prompt: str, osl: int) -> RequestResult:
        """One streamed completion; never raises (failures come back as results)."""
        assert self.session is not None
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": osl,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.extras,
        }
        start = time.perf_counter()
        res = RequestResult(ok=False)
        try:
            async with self.session.post(
                self.v1 + "/completions", data=orjson.dumps(body), headers=self.headers
            ) as resp:
                if resp.status != 200:
                    res.error = f"HTTP {resp.status}: {(await resp.read())[:200]!r}"
                    return res
                done = False
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True
                        break
                    self._event(orjson.loads(payload), res, time.perf_counter() - start)
                    if res.error:
                        return res
                res.ok = done
                if not done:
                    res.error = "stream ended without [DONE]"
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            res.error = f"{type(exc).__name__}: {exc}"
            res.ok = False
        finally:
            res.e2el = time.perf_counter() - start
        if res.ok and not res.usage_reported:
            res.output_tokens = res.chunks  # one event per token on llama.cpp / vLLM
        return res

    @staticmethod
    def _event(event: Any, res: RequestResult, now: float) -> None:
        if not isinstance(event, dict):
            return
        if "error" in event:
            res.error = str(event["error"])[:200]
            return
        for choice in event.get("choices") or ():
            text = choice.get("text") if isinstance(choice, dict) else None
            if text is None and isinstance(choice, dict):
                text = (choice.get("delta") or {}).get("content")
            if text:
                res.chunks += 1
                if res.ttft is None:
                    res.ttft = now
        usage = event.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            res.usage_reported = True
            res.input_tokens = int(usage.get("prompt_tokens") or 0)
            res.output_tokens = int(usage["completion_tokens"])


Progress = Callable[[int, int, float], None]  # (conc, requests done, seconds elapsed)


async def run_level(
    bench: Bench,
    conc: int,
    prompts: Sequence[str],
    *,
    isl: int,
    osl: int,
    duration: float,
    progress: Progress | None = None,
) -> Point:
    """``conc`` clients, back to back, until ``duration`` has passed (each sends at least one)."""
    point = Point(conc, isl, osl)
    start = time.perf_counter()
    deadline = start + duration
    counter = iter(range(10**9))

    async def client() -> None:
        first = True
        while first or time.perf_counter() < deadline:
            first = False
            prompt = prompts[next(counter) % len(prompts)]
            point.results.append(await bench.request(prompt, osl))
            if progress is not None:
                progress(conc, len(point.results), time.perf_counter() - start)

    await asyncio.gather(*(client() for _ in range(conc)))
    point.wall = time.perf_counter() - start
    return point


async def measure(
    endpoint: str,
    model: str,
    *,
    levels: Sequence[int],
    isl: int,
    osl: int,
    duration: float,
    api_key: str | None = None,
    progress: Progress | None = None,
) -> tuple[list[Point], bool]:
    """Run every concurrency level in turn; returns the points and whether prompts were exact."""
    async with Bench(endpoint, model, api_key=api_key) as bench:
        await bench.check_extras()
        prompts = await bench.prompts(isl, max(2 * max(levels), 4))
        points = [
            await run_level(
                bench, conc, prompts, isl=isl, osl=osl, duration=duration, progress=progress
            )
            for conc in levels
        ]
        return points, bench.exact_prompts


def rows(
    points: Sequence[Point], profile: FactoryProfile | None, gpus: int = 1
) -> list[dict[str, Any]]:
    """One JSON-ready dict per point: InferenceX keys, then costs, then flags."""
    result = []
    for p in points:
        m = p.metrics(profile.gpus if profile is not None else gpus)
        flags = m.pop("flags")
        flagged = m.pop("flagged")
        result.append({**m, **point_costs(m, profile), "flagged": flagged, "flags": flags})
    return result


# ------------------------------------------------------------------------------ output


def plot(rows_: Sequence[dict[str, Any]], path: str | Path, *, title: str) -> None:
    """Throughput per GPU against interactivity, with the Pareto frontier (PNG or SVG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tokenomy.economics.plot import human_axis

    fig = Figure(figsize=(7.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    good = [r for r in rows_ if not r["flagged"] and r["median_intvty"]]
    bad = [r for r in rows_ if r["flagged"] and r["median_intvty"]]
    ax.scatter([r["median_intvty"] for r in good], [r["tput_per_gpu"] for r in good], zorder=3)
    if bad:
        ax.scatter(
            [r["median_intvty"] for r in bad],
            [r["tput_per_gpu"] for r in bad],
            marker="x",
            color="tab:red",
            label="flagged (not on the frontier)",
            zorder=3,
        )
    for r in [*good, *bad]:
        ax.annotate(
            f"conc {r['conc']}",
            (r["median_intvty"], r["tput_per_gpu"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=8,
        )
    front = pareto(rows_)
    if front:
        ax.plot(
            [r["median_intvty"] for r in front],
            [r["tput_per_gpu"] for r in front],
            linestyle="--",
            marker="o",
            markersize=11,
            fillstyle="none",  # rings the frontier's points; visible even when it is one
            label="Pareto frontier",
        )
    ax.set_xlabel("interactivity (tokens/s per user, median)")
    ax.set_ylabel("throughput (tokens/s per GPU, input + output)")
    ax.yaxis.set_major_formatter(lambda v, _pos: human_axis(v))
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if front or bad:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))


def save_throughput(
    config_path: str | Path,
    name: str,
    row: dict[str, Any],
    *,
    gpu: str | None,
    note: str,
) -> str:
    """Write a measured point's throughput into ``[factories.NAME]`` of a config file.

    Sets ``throughput`` (tokens/s per GPU, input + output) and ``throughput_input_share``
    in the table (created, with ``gpu = GPU``, if missing), keeping every other line and
    comment. The new text is parsed and the table validated before the file is replaced.

    Returns:
        The new file text.

    Raises:
        ValueError: the edited table would not be a valid profile (nothing is written).
    """
    path = Path(config_path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    tput = Decimal(str(row["tput_per_gpu"]))
    total = tput if tput else Decimal(1)
    share = Decimal(str(row["input_tput_per_gpu"])) / total
    values = {
        "throughput": f'"{out(tput, 6)}"',
        "throughput_input_share": f'"{out(share, 4)}"',
    }
    comment = f"# throughput: {note}"
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\s*factories\.(?:{re.escape(name)}|\"{re.escape(name)}\")\s*\]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        block = ["", f"[factories.{name}]", comment]
        if gpu:
            block.append(f'gpu = "{gpu}"')
        block += [f"{k} = {v}" for k, v in values.items()]
        lines += block
    else:
        end = next(
            (j for j in range(start + 1, len(lines)) if lines[j].lstrip().startswith("[")),
            len(lines),
        )
        body = [
            line
            for line in lines[start + 1 : end]
            if not re.match(r"^\s*(throughput|throughput_input_share)\s*=", line)
            and not line.startswith("# throughput: ")
        ]
        new = [comment, *(f"{k} = {v}" for k, v in values.items())]
        lines = lines[: start + 1] + new + body + lines[end:]
    new_text = "\n".join(lines) + "\n"
    # Only this table changed: the file must still parse and the table be a valid profile.
    try:
        table = tomllib.loads(new_text)["factories"][name]
        validate_factory_table(name, table)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not saved: [factories.{name}]: {exc}") from exc
    tmp = path.with_name(f".{path.name}.tokenomy-measure.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
    return new_text
