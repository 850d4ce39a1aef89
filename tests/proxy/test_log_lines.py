"""The shape of a log line: JSON with the level, a UTC time, the request's context and the
worker's fields; loggers follow every (re)configuration."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.observability.logs import (
    bind_context,
    configure_logging,
    flush_logs,
    logger,
    request_started,
    reset_logging,
)

log = logger("tests.logs")  # made before the configuration below, as a module's logger is
ROOT = Path(__file__).resolve().parents[2]
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
def buffer() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream)
    yield stream
    reset_logging()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_logs()  # the lines of a loop's round wait for its end: tests below
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_has_level_time_and_the_request_context(buffer: io.StringIO) -> None:
    request_started()
    bind_context(client_id="merchant-ios")
    log.info("thing.happened", count=2)
    log.warning("thing.odd")
    log.debug("not written at info")
    first, second = lines(buffer)
    assert first["event"] == "thing.happened" and first["count"] == 2
    assert first["level"] == "info" and second["level"] == "warning"
    assert re.fullmatch(r"[0-9a-f]{32}", first["request_id"])
    assert first["client_id"] == second["client_id"] == "merchant-ios"
    assert ISO_UTC.fullmatch(first["timestamp"])
    written = datetime.datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert abs(written - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(seconds=5)


def test_a_new_request_starts_with_a_new_context(buffer: io.StringIO) -> None:
    request_started()
    bind_context(client_id="merchant-ios", bank_id="bank-a")
    log.info("one")
    request_started()
    log.info("two")
    one, two = lines(buffer)
    assert "client_id" not in two and "bank_id" not in two
    assert one["request_id"] != two["request_id"]


async def test_a_task_keeps_the_context_it_started_with(buffer: io.StringIO) -> None:
    request_started()
    bind_context(client_id="merchant-ios")
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def background() -> None:
        started.set()
        await go_on.wait()
        log.info("background")

    task = asyncio.create_task(background())
    await started.wait()
    bind_context(bank_id="bank-a")  # after the task started: not the task's
    go_on.set()
    await task
    log.info("request")
    background_line, request_line = lines(buffer)
    assert background_line["client_id"] == "merchant-ios" and "bank_id" not in background_line
    assert request_line["bank_id"] == "bank-a"


def test_an_exception_is_rendered_into_the_line(buffer: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    (line,) = lines(buffer)
    assert line["level"] == "error"
    assert "ValueError: boom" in line["exception"]


def test_a_worker_names_itself_in_every_line() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream, worker=3)
    try:
        log.info("below the level")
        log.warning("seen")
    finally:
        reset_logging()
    (line,) = lines(stream)
    assert (line["worker"], line["pid"]) == (3, os.getpid())


def test_loggers_follow_a_reconfiguration_and_capture_logs() -> None:
    first, second = io.StringIO(), io.StringIO()
    try:
        configure_logging("info", first)
        log.info("to the first")
        configure_logging("info", second)
        log.info("to the second")
        with capture_logs() as captured:
            log.info("captured")
    finally:
        reset_logging()
    assert [line["event"] for line in lines(first)] == ["to the first"]
    assert [line["event"] for line in lines(second)] == ["to the second"]
    assert [entry["event"] for entry in captured] == ["captured"]


class Writes(io.StringIO):
    """A stream that keeps each write: what reached the file in one system call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def test_the_lines_of_one_round_of_the_loop_are_written_together_when_it_ends() -> None:
    stream = Writes()
    configure_logging("info", stream)
    try:
        log.info("one")
        log.info("two")
        assert stream.writes == []  # the round is still running
        await asyncio.sleep(0)  # it ends: the lines go out
        assert stream.writes == [stream.getvalue()] and stream.getvalue().count("\n") == 2
        # three requests' lines in the next round: one write
        tasks = [asyncio.create_task(_log_one(n)) for n in range(3)]
        await asyncio.sleep(0)  # they ran before this; their flush comes after
        assert len(stream.writes) == 1
        await asyncio.gather(*tasks)
        assert len(stream.writes) == 2 and stream.writes[1].count("\n") == 3
        assert [line.get("n") for line in lines(stream)] == [None, None, 0, 1, 2]
    finally:
        reset_logging()


async def _log_one(n: int) -> None:
    log.info("request", n=n)


def test_outside_a_running_loop_a_line_is_written_at_once() -> None:
    stream = Writes()
    configure_logging("info", stream)
    try:
        log.info("start-up")
        assert len(stream.writes) == 1 and json.loads(stream.writes[0])["event"] == "start-up"
    finally:
        reset_logging()


def test_a_write_holds_whole_lines_and_at_most_pipe_buf_bytes_but_for_a_longer_line() -> None:
    stream = Writes()
    configure_logging("info", stream)

    async def many() -> None:
        for n in range(40):
            log.info("line", n=n, padding="x" * 300 if n % 2 else "ë" * 300)  # 2 bytes each
        log.info("long", padding="y" * (2 * select.PIPE_BUF))
        log.info("after")

    try:
        asyncio.run(many())
    finally:
        reset_logging()
    assert len(stream.writes) > 3
    for text in stream.writes:
        assert text.endswith("\n")
        assert len(text.encode()) <= select.PIPE_BUF or text.count("\n") == 1
    written = [json.loads(line) for text in stream.writes for line in text.splitlines()]
    assert [line.get("n") for line in written[:40]] == list(range(40))
    assert [line["event"] for line in written[40:]] == ["long", "after"]


def test_a_line_left_by_a_loop_that_closed_comes_out_first_with_the_next() -> None:
    stream = Writes()
    configure_logging("info", stream)

    async def last_words() -> None:
        log.info("first")

    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(last_words())
        loop.close()  # its flush never ran
        asyncio.run(last_words())
        log.info("outside")
    finally:
        reset_logging()
    assert [line["event"] for line in lines(stream)] == ["first", "first", "outside"]


def test_a_line_still_waiting_at_exit_is_written(tmp_path: Path) -> None:
    script = """
import asyncio, os, sys
from proxy.observability.logs import configure_logging, logger
configure_logging("info")
async def main():
    logger("t").info("last")
    os.write(1, b"before the end\\n")
    sys.exit(0)  # ends the loop before its round is over
asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "before the end" and json.loads(second)["event"] == "last"


def test_a_value_json_has_no_form_for_is_written_not_refused(buffer: io.StringIO) -> None:
    log.info("odd", counts={1: "one"}, thing=object(), error=ValueError("x"))
    (line,) = lines(buffer)
    assert line["counts"] == {"1": "one"}
    assert line["thing"].startswith("<object object") and line["error"] == "ValueError('x')"
