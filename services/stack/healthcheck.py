"""One health probe for both worlds: ``python -m services.stack.healthcheck URL [--expect TEXT]``.

Compose health checks run it inside the images (they have python) and ``hyp up`` calls :func:`probe`.
Standard library only, so it starts fast and needs none of the service's dependencies.
Exit 0 when the URL answers 2xx (and its body holds ``--expect``), 1 otherwise, with the reason.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def probe(url: str, expect: str | None = None, timeout: float = 2.0) -> str | None:
    """None when healthy, otherwise a one-line reason."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(65536).decode("utf-8", "replace")
            if not 200 <= response.status < 300:
                return f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    if expect is not None and expect not in body:
        return f"{url}: answer does not contain {expect!r}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.stack.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="http URL to GET")
    parser.add_argument("--expect", help="text the answer must contain")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    args = parser.parse_args(argv)
    reason = probe(args.url, args.expect, args.timeout)
    if reason:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
