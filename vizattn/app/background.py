"""One `vizattn analyze` at a time per server, in a thread of the server process: the Data set tab starts it, reads
its progress and cancels it from any rerun. The run is `vizattn.analyze.analyze` itself, which keeps finished shards
and resumes from them, so a cancelled or failed run is continued by starting the same job into the same folder."""
from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, replace

from vizattn.errors import VizattnError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    """What a run is doing. `done` and `total` count shards (None until analyze has planned them); `resumed` is
    how many were already on disk when it started; `message` is the sentence a failed run ended with."""
    id: int
    job: object  # vizattn.analyze.Job
    out: str
    engine: str
    state: str = "running"  # running, finished, cancelled or failed
    done: int | None = None
    total: int | None = None
    resumed: int | None = None
    message: str = ""
    cancelling: bool = False


class Runner:
    """The server's one analyze slot. Every method is safe to call from any session's script thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._status: Status | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> Status | None:
        with self._lock:
            return self._status

    def start(self, job, out: str, engine: str, workers: int, shard_size: int) -> int:
        """Start `job` into `out` in a new thread and return the run's id; refused while another run is going."""
        with self._lock:
            s = self._status
            if s is not None and s.state == "running":
                where = f" ({s.done} of {s.total} shards)" if s.total else ""
                raise VizattnError(f"An analyze into '{s.out}' is already running on this server{where}; wait for it "
                                   "or cancel it, then start this one.")
            self._cancel.clear()
            self._status = Status(next(self._ids), job, str(out), engine)
            self._thread = threading.Thread(target=self._run, args=(self._status.id, job, out, engine, workers,
                                                                    shard_size), name="vizattn-analyze", daemon=True)
            self._thread.start()
            return self._status.id

    def cancel(self, run_id: int) -> None:
        """Stop run `run_id` after the shard in flight (its finished shards stay on disk)."""
        with self._lock:
            if self._status is not None and self._status.id == run_id and self._status.state == "running":
                self._cancel.set()
                self._status = replace(self._status, cancelling=True)

    def wait(self, timeout: float | None = None) -> Status | None:
        """The status once the current run has ended (or `timeout` seconds passed)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _update(self, run_id: int, **changes) -> None:
        with self._lock:
            if self._status is not None and self._status.id == run_id:
                self._status = replace(self._status, **changes)

    def _run(self, run_id: int, job, out: str, engine: str, workers: int, shard_size: int) -> None:
        from vizattn.analyze import Cancelled, analyze
        from vizattn.app.errors import OUT_OF_MEMORY

        def on_shard(done: int, total: int) -> None:
            with self._lock:
                first = self._status.resumed is None
            self._update(run_id, done=done, total=total, **({"resumed": done} if first else {}))
            if self._cancel.is_set():
                raise Cancelled("Cancelled from the page.")

        try:
            analyze(job, out, engine, workers, shard_size=shard_size, progress=False, on_shard=on_shard)
        except Cancelled:
            self._update(run_id, state="cancelled")
        except VizattnError as err:
            self._update(run_id, state="failed", message=str(err))
        except MemoryError:
            self._update(run_id, state="failed", message=OUT_OF_MEMORY)
        except Exception as err:  # noqa: BLE001 (the page shows a sentence; the server's log keeps the traceback)
            log.exception("vizattn analyze started from the page failed")
            self._update(run_id, state="failed", message=(
                f"The analyze stopped on an unexpected error ({type(err).__name__}); the finished shards are kept in "
                f"'{out}'. Start it again to resume, or run `vizattn analyze` in a terminal to see the traceback."))
        else:
            self._update(run_id, state="finished")
