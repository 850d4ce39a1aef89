"""Where the proxy's time goes: one endpoint under wrk load, sampled by py-spy.

    .venv/bin/python -m benchmarks.profile introspect|bank|token|authorize [--duration 10]

Starts what the suite starts (a private redis-server, the sandbox bank, the proxy as a
``serve --workers 1`` subprocess pinned to core 0), drives one endpoint with wrk from
core 1 and records the proxy with ``py-spy record`` (locked in uv.lock, dependency group
``bench``), pausing it for each sample so that every stack is whole. Prints the
functions with the most samples, by own time and by time including callees, and writes
the raw collapsed stacks (for a flame graph: ``flamegraph.pl`` or speedscope.app) to
``--out``, by default under ``benchmarks/out/``, which git ignores: profiles carry the
machine's paths and are never committed. ``--no-sample``: only wrk's figures and the
server's CPU time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import sys
import tempfile
from pathlib import Path

import aiohttp

from benchmarks import fixtures as fx
from benchmarks import suite as bench
from benchmarks.wrk import ensure_wrk, run_wrk, write_script

OUT = Path(__file__).resolve().parent / "out"


def ensure_py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("py-spy is missing from this environment: run benchmarks/run or "
                         "scripts/test once, which install .venv from uv.lock")
    return found


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used: proc(5), /proc/PID/stat fields
    14 and 15, in clock ticks. Per request, it moves less with a busy machine than req/s
    does (time spent waiting for a core is not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarize(collapsed: Path, top: int) -> str:
    """Own and inclusive sample counts per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples"]
    for title, counter in (("own time", own), ("including callees", inclusive)):
        lines.append(f"\n-- {title} --")
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / max(total, 1):6.1f}%  {frame}")
    return "\n".join(lines)


async def profile(args: argparse.Namespace) -> None:
    py_spy = ensure_py_spy()
    with tempfile.TemporaryDirectory(prefix="a2a-profile-") as tmp:
        folder = Path(tmp)
        async with fx.redis_server(folder, bench.LOAD_CPU) as rs:
            port = fx.free_port()
            async with fx.sandbox(port) as bank:
                setup = fx.Setup(folder, port, rs.url, bank)
                fx.write_config(setup)
                async with aiohttp.ClientSession() as http:
                    minter = fx.Minter(setup, http)
                    try:
                        await drive(args, setup, rs, minter, folder, py_spy)
                    finally:
                        await minter.close()


async def drive(args: argparse.Namespace, setup: fx.Setup, rs: fx.RedisServer,
                minter: fx.Minter, folder: Path, py_spy: str) -> None:  # fmt: skip
    script = write_script(folder)
    issuer = setup.issuer
    headers: dict[str, str] = {}
    if args.endpoint == "introspect":
        tokens = await minter.logins(2000)
        lines = [f"token={t}" for t in tokens]
        url, method, headers = f"{issuer}/introspect", "POST", bench.INTROSPECT_HEADERS
    elif args.endpoint == "bank":  # a resource server with receive_bank_token: true
        tokens = await minter.logins(2000, bank_tokens=fx.JWT_SIZED_BANK_TOKENS)
        lines = [f"token={t}" for t in tokens]
        url, method, headers = f"{issuer}/introspect", "POST", bench.BANK_HEADERS
    elif args.endpoint == "token":
        first = await minter.code()
        codes = fx.clone_codes(rs.client(), first, int(args.duration * 4000))
        lines = [bench.exchange_body(c) for c in codes]
        url, method, headers = f"{issuer}/token", "POST", bench.FORM
    else:
        lines = [bench.authorize_template()]
        url, method = issuer, "GET"
    lines_file = folder / "lines.txt"
    lines_file.write_text("\n".join(lines) + "\n")
    command = fx.proxy_command(setup, workers=1, cpus=bench.fx_cpu(bench.SERVER_CPU),
                               log_level=args.log_level)
    async with fx.process(command, f"{issuer}/healthz", folder / "proxy.log"):
        pid = int(await (await asyncio.create_subprocess_exec(
            # this run's own config file: other proxies may be serving on the machine
            "pgrep", "-n", "-f", str(setup.config_path), stdout=asyncio.subprocess.PIPE
        )).stdout.read())  # type: ignore[union-attr]
        # warm up (connections, caches), then record while wrk runs
        await run_wrk(url, lines_file, script, method=method, duration=1,
                      connections=args.connections, headers=headers, cpus=bench.LOAD_CPU)
        async def fresh_codes() -> None:
            if args.endpoint == "token":  # each run uses codes up: a new list for the next
                codes = fx.clone_codes(rs.client(), await minter.code(),
                                       int(args.duration * 4000))
                lines_file.write_text("\n".join(bench.exchange_body(c) for c in codes) + "\n")

        await fresh_codes()
        if args.no_sample:
            for _ in range(args.repeat):
                await fresh_codes()
                before = cpu_seconds(pid)
                result = await run_wrk(url, lines_file, script, method=method,
                                       duration=args.duration, connections=args.connections,
                                       headers=headers, cpus=bench.LOAD_CPU)
                used = cpu_seconds(pid) - before
                print(f"{args.endpoint}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                      f"p99 {result.p99_ms:.2f} ms, errors {result.errors}, "
                      f"{1e6 * used / max(result.requests, 1):.1f} µs of server CPU per "
                      f"request (not sampled)")
            return
        collapsed = args.out or OUT / f"profile-{args.endpoint}.txt"
        collapsed.parent.mkdir(parents=True, exist_ok=True)
        spy = await asyncio.create_subprocess_exec(
            py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "500",
            "--duration", str(round(args.duration)), "--output", str(collapsed),
            "--function", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        result = await run_wrk(url, lines_file, script, method=method,
                               duration=args.duration, connections=args.connections,
                               headers=headers, cpus=bench.LOAD_CPU)
        await spy.wait()
    print(f"{args.endpoint}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
          f"p99 {result.p99_ms:.2f} ms, errors {result.errors} (while sampled)")
    print(summarize(collapsed, args.top))
    print(f"\ncollapsed stacks: {collapsed}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoint", choices=["introspect", "bank", "token", "authorize"])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path,
                        help="where the collapsed stacks go (default: benchmarks/out/)")
    parser.add_argument("--no-sample", action="store_true",
                        help="only the wrk figures and the server's CPU time per request, "
                             "without py-spy attached")
    parser.add_argument("--repeat", type=int, default=1,
                        help="with --no-sample: this many runs, one line each")
    args = parser.parse_args()
    ensure_wrk()
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {int(bench.LOAD_CPU)})
    asyncio.run(profile(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
