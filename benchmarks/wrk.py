"""wrk: found (or installed with apt-get), driven by one Lua script, its figures parsed.

The Lua script sends the requests of a file, one line each (form bodies for POST,
paths for GET, access tokens for BEARER: a GET of the URL with ``Authorization: Bearer``),
cycling through them; ``{n}`` in a line becomes a per-thread counter,
so a template line makes every request unique. ``delay()`` paces each connection
(plain wrk has no fixed-rate mode). ``done()`` prints the figures as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL = "apt-get install -y wrk"
MARK = "WRKJSON "

LUA = r"""
local lines = {}
local index = 0
local counter = 0
local method = "GET"
local pace = 0
local prefix = ""
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  -- args: file, method, pace in ms (0: none), thread count
  method = args[2]
  pace = tonumber(args[3])
  local nthreads = tonumber(args[4])
  prefix = "t" .. id .. "x"
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id then table.insert(lines, line) end
    i = i + 1
  end
end

function request()
  index = index + 1
  if index > #lines then
    index = 1
    wrapped = (wrapped or 0) + 1
  end
  counter = counter + 1
  local line = string.gsub(lines[index], "{n}", prefix .. counter)
  if method == "GET" then
    return wrk.format("GET", line, nil, nil)
  end
  if method == "BEARER" then
    -- a GET of the URL's path with the line as its bearer token (RFC 6750 §2.1)
    return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. line}, nil)
  end
  return wrk.format(method, nil, nil, line)
end

if os.getenv("WRK_PACE") ~= nil and os.getenv("WRK_PACE") ~= "0" then
  function delay()
    return pace
  end
end

function done(summary, latency, requests)
  local wrapped_total = 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f,"wrapped":%d}\n',
    "WRKJSON ", summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, wrapped_total))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # non-2xx/3xx answers, and socket errors (connect, read, write, timeout)
    status_errors: int
    socket_errors: int
    wrapped: int  # times a thread ran out of lines and started again
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1), "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms, "errors": self.errors,
            "status_errors": self.status_errors, "socket_errors": self.socket_errors,
            "wrapped": self.wrapped, **self.extra,
        }


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package when missing and this is root."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise SystemExit(f"wrk is needed for the benchmarks: {INSTALL}")
    print(f"wrk is missing: installing it ({INSTALL})", file=sys.stderr)
    subprocess.run([apt, "update", "-qq"], check=False)  # noqa: S603 (fixed arguments)
    subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=True)  # noqa: S603
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(f"wrk is needed for the benchmarks: {INSTALL}")
    return found


def write_script(folder: Path) -> Path:
    path = folder / "requests.lua"
    path.write_text(LUA)
    return path


async def run_wrk(
    url: str,
    lines_file: Path,
    script: Path,
    *,
    method: str,
    duration: float,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    pace_ms: int = 0,
    cpus: str | None = None,
) -> WrkResult:
    """wrk against ``url`` for ``duration`` seconds; pinned to ``cpus`` (taskset) if given."""
    command = [ensure_wrk(), f"-t{threads}", f"-c{max(connections, threads)}",
               f"-d{max(1, round(duration))}s", "--latency", "--timeout", "5s", "-s", str(script)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command += [url, "--", str(lines_file), method, str(pace_ms), str(threads)]
    if cpus is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpus, *command]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "WRK_PACE": str(pace_ms)},
    )
    out, err = await process.communicate()
    text = out.decode()
    line = next((x for x in text.splitlines() if x.startswith(MARK)), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {text}\n{err.decode()}")
    data = json.loads(line[len(MARK):])
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        status_errors=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        wrapped=data["wrapped"],
    )
