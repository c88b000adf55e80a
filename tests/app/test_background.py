"""The server's one analyze slot: a run's outcome is a state and one sentence (never a traceback), a second run
waits for the first, and a cancel stops the run at its next shard."""
import threading

import pytest

import vizattn.analyze as analyze_module
from vizattn.analyze import Cancelled, Job
from vizattn.app.background import Runner
from vizattn.errors import VizattnError

JOB = Job(model="criss_cross", images="/nowhere")


def fake(monkeypatch, body):
    monkeypatch.setattr(analyze_module, "analyze", lambda job, out, engine, workers, **kw: body(kw["on_shard"]))


@pytest.mark.parametrize("error, sentence", [
    (VizattnError("No PNG/JPEG images in '/nowhere'."), "No PNG/JPEG images in '/nowhere'."),
    (RuntimeError("boom\nTraceback (most recent call last)"), "The analyze stopped on an unexpected error "
     "(RuntimeError); the finished shards are kept in 'out'. Start it again to resume, or run `vizattn analyze` in "
     "a terminal to see the traceback."),
])
def test_a_failed_run_ends_in_one_sentence(monkeypatch, error, sentence):
    def body(on_shard):
        on_shard(0, 3)
        raise error

    fake(monkeypatch, body)
    runner = Runner()
    runner.start(JOB, "out", "local", 1, 8)
    s = runner.wait(10)
    assert (s.state, s.message, s.done, s.total, s.resumed) == ("failed", sentence, 0, 3, 0)


def test_one_run_at_a_time_and_cancel_stops_it_at_the_next_shard(monkeypatch):
    reached, go = threading.Event(), threading.Event()

    def body(on_shard):
        on_shard(2, 5)  # two shards were already on disk: a resume
        reached.set()
        assert go.wait(10)
        on_shard(3, 5)
        on_shard(4, 5)

    fake(monkeypatch, body)
    runner = Runner()
    run = runner.start(JOB, "out", "local", 1, 8)
    with pytest.raises(VizattnError, match="already running on this server"):
        runner.start(JOB, "other", "local", 1, 8)
    assert reached.wait(10)
    runner.cancel(run)
    assert runner.status().cancelling
    go.set()
    s = runner.wait(10)
    assert (s.state, s.done, s.total, s.resumed) == ("cancelled", 3, 5, 2)
    assert issubclass(Cancelled, VizattnError)
    fake(monkeypatch, lambda on_shard: on_shard(5, 5))  # the slot is free again; nothing was left to do
    assert runner.start(JOB, "out", "local", 1, 8) == run + 1
    assert runner.wait(10).state == "finished"
