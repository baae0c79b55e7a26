"""Sequential keep-alive chat requests for the callgrind measurement in bench/RESULTS.md.

Usage: python bench/callgrind_client.py PORT API_KEY N
"""

from __future__ import annotations

import http.client
import json
import sys


def main() -> None:
    port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    body = json.dumps(
        {"model": "bench-model", "messages": [{"role": "user", "content": "Say hello."}]}
    )
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for _ in range(n):
        conn.request("POST", "/v1/chat/completions", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"HTTP {response.status}")


if __name__ == "__main__":
    main()
