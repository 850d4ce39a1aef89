"""``python -m benchmarks``: the whole suite; see :mod:`benchmarks.suite`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from benchmarks import report, suite
from benchmarks.wrk import ensure_wrk
from proxy.observability.logs import configure_logging


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=suite.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of each wrk run (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 s runs, 100k tokens for the scale case")
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk connections (default %(default)s)")
    parser.add_argument("--logins", type=int, default=2000,
                        help="logins minted for introspection (default %(default)s)")
    parser.add_argument("--scale-tokens", type=int, default=2_000_000,
                        help="live tokens of the large scale case (default %(default)s)")
    parser.add_argument("--log-level", default="info",
                        help="the proxy's --log-level (default %(default)s, as deployed)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating proxy/bare runs per compared endpoint "
                             "(default %(default)s)")
    parser.add_argument("--only", metavar="RUNS",
                        help="a comma-separated subset of: " + ", ".join(suite.RUNS))
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
        args.scale_tokens = min(args.scale_tokens, 100_000)
    unknown = set(args.only.split(",")) - set(suite.RUNS) if args.only else set()
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(suite.RUNS)}")
    ensure_wrk()
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {int(suite.LOAD_CPU)})  # off the server's core
    configure_logging("warning", stream=sys.stderr)  # the minting's audit lines
    results = asyncio.run(suite.run(args))
    print(report.markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
