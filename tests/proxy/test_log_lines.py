"""The shape of a log line: JSON with the level, a UTC time, the request's context and the
worker's fields; loggers follow every (re)configuration."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.observability.logs import (
    bind_context,
    configure_logging,
    logger,
    request_started,
    reset_logging,
)

log = logger("tests.logs")  # made before the configuration below, as a module's logger is
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
def buffer() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream)
    yield stream
    reset_logging()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
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
