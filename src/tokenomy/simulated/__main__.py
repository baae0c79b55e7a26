"""The simulated token factory on its own, for any client or gateway (no API key).

Usage: python -m tokenomy.simulated [--port 8100] [--tokens-per-s 0] [--ttft-ms 0]
[--failure-rate 0] [--answer-tokens 120]. It serves one provider named ``sim``: OpenAI
clients use ``http://127.0.0.1:PORT/sim/v1`` as their base URL, Anthropic clients
``http://127.0.0.1:PORT/sim``. It prints one ``listening on URL`` line once it accepts
connections, and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tokenomy.simulated.server import Options, SimulatedFactory


async def _serve(factory: SimulatedFactory) -> None:
    serving = factory.serve()
    await anext(serving)
    print(f"listening on {factory.base_url('sim')}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(serving)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tokenomy.simulated")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--tokens-per-s", type=float, default=0.0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--answer-tokens", type=int, default=120)
    args = parser.parse_args()
    options = Options(args.tokens_per_s, args.ttft_ms, args.failure_rate, args.answer_tokens)
    factory = SimulatedFactory({"sim": options}, port=args.port)
    try:
        import uvloop

        uvloop.run(_serve(factory))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
