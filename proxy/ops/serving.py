"""``app2app-proxy serve`` in one process: the server alone (``--workers 1``), or one
worker of :mod:`proxy.ops.workers`. SIGTERM/SIGINT drain and stop; SIGHUP reloads the
config file (:mod:`proxy.ops.reload`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from dataclasses import dataclass

import uvloop
from aiohttp import web

from proxy.app import create_app
from proxy.config import load_or_report
from proxy.config.settings import Config
from proxy.endpoints.health import DRAIN, Drain
from proxy.observability.logs import configure_logging, logger
from proxy.ops.reload import reload_config
from proxy.web.forms import DEFAULT_BODY_TIMEOUT
from proxy.web.server import KEEPALIVE_TIMEOUT, ProxyRunner

log = logger("proxy.serve")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# blocked until serve() handles them: a signal during start-up waits instead of killing
# the process by its default action (SIGHUP's is to terminate)
SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)
# how often a worker checks that its supervisor is still there
PARENT_CHECK = 1.0


@dataclass(frozen=True)
class ServeOptions:
    """The ``serve`` flags; picklable, so a worker process gets them as they are."""

    config_path: str
    host: str | None  # None: listen.host
    port: int | None  # None: listen.port
    drain_delay: float
    shutdown_timeout: float
    log_level: str = "info"
    reuse_port: bool = False  # with --workers N: every worker listens on the same port
    keepalive_timeout: float = KEEPALIVE_TIMEOUT  # proxy.web.server
    body_timeout: float = DEFAULT_BODY_TIMEOUT


def run_server(
    options: ServeOptions,
    config: Config | None = None,
    *,
    worker: int | None = None,
    parent_pid: int | None = None,
) -> int:
    """Serve until stopped; the exit status. ``config``: already loaded from the file."""
    if config is None:
        config = load_or_report(options.config_path)
        if config is None:
            return 2
    configure_logging(options.log_level, worker=worker)
    try:
        app = create_app(config)
    except ValueError as exc:  # OTEL_* names an exporter or protocol we do not have
        log.error("tracing_not_started", detail=str(exc))
        return 2
    with asyncio.Runner(loop_factory=event_loop) as runner:
        runner.run(serve(
            app,
            host=options.host or config.listen.host,
            port=options.port or config.listen.port,
            drain_delay=options.drain_delay,
            shutdown_timeout=options.shutdown_timeout,
            config_path=options.config_path,
            reuse_port=options.reuse_port,
            parent_pid=parent_pid,
            keepalive_timeout=options.keepalive_timeout,
            body_timeout=options.body_timeout,
        ))
    return 0


def event_loop() -> asyncio.AbstractEventLoop:
    """The loop ``serve`` runs on: uvloop's (libuv). Same asyncio API; it spends less per
    socket event, which is much of what a small request costs (docs/performance.md)."""
    return uvloop.new_event_loop()


def run_worker(options: ServeOptions, worker: int, parent_pid: int) -> None:
    """A worker process's entry point (started by :mod:`proxy.ops.workers`, "spawn": a fresh
    interpreter that builds its event loop, app, store and session itself)."""
    sys.exit(run_server(options, worker=worker, parent_pid=parent_pid))


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    drain_delay: float,
    shutdown_timeout: float,
    config_path: str | None = None,
    reuse_port: bool = False,
    parent_pid: int | None = None,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> None:
    """Serve until SIGTERM (or SIGINT), then stop without dropping a request:

    1. /readyz answers 503 at once, so the load balancer takes this instance out;
    2. for ``drain_delay`` seconds every request is still served (those the load
       balancer sends before it notices); a second signal cuts this short;
    3. the listener closes and requests in flight get ``shutdown_timeout`` seconds to
       finish (aiohttp's graceful shutdown), then the store and HTTP session close.

    SIGHUP reloads ``config_path``, one reload at a time. A worker (``parent_pid``) also
    stops this way when its supervisor is gone. Connections are bounded by
    ``keepalive_timeout`` (idle, or a request header not complete) and ``body_timeout``
    (:mod:`proxy.web.server`).
    """
    drain = Drain()
    app[DRAIN] = drain
    stop = asyncio.Event()
    hurry = asyncio.Event()
    reloading = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        if drain.draining:
            hurry.set()
        drain.draining = True
        stop.set()

    async def reload() -> None:
        assert config_path is not None
        async with reloading:
            await reload_config(app, config_path)

    def on_hangup() -> None:
        if config_path is None:
            log.warning("config_reload_unavailable", detail="no config file to read")
            return
        task = asyncio.create_task(reload())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def check_parent(pid: int) -> None:
        if stop.is_set():
            return
        if os.getppid() != pid:
            log.error("supervisor_gone", parent_pid=pid, detail="stopping this worker")
            on_signal()
            return
        asyncio.get_running_loop().call_later(PARENT_CHECK, check_parent, pid)

    runner = ProxyRunner(app, keepalive_timeout=keepalive_timeout, body_timeout=body_timeout,
                         shutdown_timeout=shutdown_timeout)
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        await runner.setup()
        # What start-up built (config, keys, clients, imported modules) lives as long as
        # the process: moved out of the collector's sight, a full collection no longer
        # walks it. Without this, the periodic full collections were 20-50 ms pauses:
        # the introspection p99 at peak (docs/performance.md).
        gc.collect()
        gc.freeze()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            loop = asyncio.get_running_loop()
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, on_signal)
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
            # what came during start-up is handled now (a worker starts with them blocked)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            if parent_pid is not None:
                check_parent(parent_pid)
            log.info("serving", host=host, port=port, pid=os.getpid())
            await stop.wait()
            log.info("draining", drain_delay=drain_delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hurry.wait(), drain_delay)
            log.info("shutting_down", shutdown_timeout=shutdown_timeout)
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    log.info("stopped")
