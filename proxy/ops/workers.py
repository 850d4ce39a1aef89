"""``app2app-proxy serve --workers N``: N server processes on one port, supervised.

Each worker is a fresh interpreter (multiprocessing "spawn", not "fork": nothing of
the parent's event loop, sockets, locks or imported metrics state is inherited; the
worker loads the config and builds its app, store and session itself) and listens
with SO_REUSEPORT, so the kernel spreads connections over them.

The parent serves nothing. It forwards SIGTERM, SIGINT and SIGHUP to every worker
(each drains, or reloads, on its own) and exits when all have exited: 0 when they
all stopped cleanly after a stop signal. It restarts nothing: when a worker exits
unexpectedly, it logs ``worker_died``, stops the others (SIGTERM: they drain) and
exits 1, so the orchestrator restarts the whole instance rather than it running on
with fewer workers than asked for.

``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh folder for the workers (/metrics of any
worker sums all of them, see proxy.observability.metrics) and removed at the end.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from proxy.observability.logs import configure_logging, logger
from proxy.observability.metrics import MULTIPROC_ENV
from proxy.ops.serving import SIGNALS, STOP_SIGNALS, ServeOptions, run_worker

log = logger("proxy.workers")


def run_workers(options: ServeOptions, count: int) -> int:
    """Start ``count`` workers and supervise them until they have all exited."""
    configure_logging(options.log_level)
    previous = os.environ.get(MULTIPROC_ENV)
    metrics_dir = tempfile.mkdtemp(prefix="app2app-proxy-metrics-")
    # before the workers start: prometheus_client reads it when a worker imports it
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        return _Supervisor(options, count).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous


class _Supervisor:
    def __init__(self, options: ServeOptions, count: int) -> None:
        self.options = options
        self.count = count
        self.alive: dict[int, tuple[int, BaseProcess]] = {}  # sentinel -> (number, process)
        self.stopping = False
        self.failed = False

    def run(self) -> int:
        # Signals reach the loop below through a pipe (signal.set_wakeup_fd): the handlers
        # themselves do nothing, so no forwarding or logging runs inside a signal handler.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        handlers = {signum: signal.signal(signum, _ignore) for signum in SIGNALS}
        wakeup = signal.set_wakeup_fd(wake_write)
        # workers inherit the blocked mask and unblock once they handle the signals
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self._start()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            while self.alive:
                ready = wait([wake_read, *self.alive])
                if wake_read in ready:
                    self._forward(_read_signals(wake_read))
                for sentinel in ready:
                    if sentinel in self.alive:
                        self._exited(sentinel)
        finally:
            for _, process in self.alive.values():  # only after an error here
                process.terminate()
                process.join()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            signal.set_wakeup_fd(wakeup)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            os.close(wake_read)
            os.close(wake_write)
        (log.error if self.failed else log.info)("workers_stopped", exit_code=int(self.failed))
        return 1 if self.failed else 0

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        log.info("workers_starting", workers=self.count, pid=os.getpid())
        for number in range(self.count):
            process = context.Process(
                target=run_worker, args=(self.options, number, os.getpid()),
                name=f"app2app-proxy-worker-{number}",
            )  # fmt: skip
            process.start()
            self.alive[process.sentinel] = (number, process)
            log.info("worker_started", worker=number, worker_pid=process.pid)

    def _forward(self, signums: list[int]) -> None:
        for signum in signums:
            if signum in STOP_SIGNALS:
                self.stopping = True
            log.info("signal_forwarded", signal=signal.Signals(signum).name,
                     workers=len(self.alive))  # fmt: skip
            self._signal_all(signum)

    def _signal_all(self, signum: int) -> None:
        for _, process in self.alive.values():
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _exited(self, sentinel: int) -> None:
        number, process = self.alive.pop(sentinel)
        process.join()
        code = process.exitcode
        if self.stopping and code == 0:
            log.info("worker_exited", worker=number, worker_pid=process.pid, exit_code=code)
            return
        self.failed = True
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else (
            f"exit code {code}")  # fmt: skip
        if not self.stopping:
            how += (", unexpectedly: stopping every worker and exiting 1 so that the "
                    "orchestrator restarts this instance")  # fmt: skip
        log.error("worker_died", worker=number, worker_pid=process.pid, exit_code=code,
                  detail=how)  # fmt: skip
        if not self.stopping:
            self.stopping = True
            self._signal_all(signal.SIGTERM)


def _ignore(signum: int, frame: object) -> None:
    """Installed so that the signal is caught (and written to the wakeup pipe)."""


def _read_signals(fd: int) -> list[int]:
    received = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 64):
            received += chunk
    return list(received)
