"""Long calls release the GIL: another Python thread keeps running while they work."""
import threading
import time

import pytest

import qaexchange


def synthetic_lobster(tmp_path, pairs):
    """A valid 1-level LOBSTER day: an ask of 10 at 100.00 submitted and deleted, `pairs` times,
    over a book of 99.99 x 50 / 100.00 x 100."""
    m = tmp_path / "SYN_2012-06-21_34200000_57600000_message_1.csv"
    b = tmp_path / "SYN_2012-06-21_34200000_57600000_orderbook_1.csv"
    msgs, rows = [], []
    for i in range(1, pairs + 1):
        t = 34200 + i * 0.0001
        msgs.append(f"{t:.4f},1,{i},10,1000000,-1\n{t:.4f},3,{i},10,1000000,-1\n")
        rows.append("1000000,110,999900,50\n1000000,100,999900,50\n")
    m.write_text("".join(msgs))
    b.write_text("".join(rows))
    return m, b


def longest_pause_during(work):
    """Runs work() in a thread; returns (its duration, the longest pause of this thread)."""
    span = {}

    def run():
        span["start"] = time.perf_counter()
        work()
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=run)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.0005)
    worker.join()
    inside = [t for t in ticks if span["start"] <= t <= span["end"]]
    inside = [span["start"]] + inside + [span["end"]]
    return span["end"] - span["start"], max(b - a for a, b in zip(inside, inside[1:]))


@pytest.mark.parametrize("mode", ["engine", "exact"])
def test_step_and_replay_release_the_gil(tmp_path, mode):
    m, b = synthetic_lobster(tmp_path, 100_000)
    bt = qaexchange.Backtest(tmp_path / "j", m, b, mode=mode)
    assert bt.step(1)
    took, pause = longest_pause_during(lambda: bt.step(10**9))
    assert bt.messages_applied == 200_000 and getattr(bt, "data_rejects", 0) == 0
    assert took > 0.1, "too little work to tell"
    assert pause < took / 2, (took, pause)
    bt.finish()

    result = {}
    took, pause = longest_pause_during(
        lambda: result.update(r=qaexchange.replay(bt.journal_dir)))
    assert result["r"].state_hash == bt.state_hash
    if took < 0.05:
        pytest.skip(f"replay took {took:.3f} s: too little work to tell")
    assert pause < took / 2, (took, pause)


def test_batched_run_releases_the_gil(tmp_path):
    m, b = synthetic_lobster(tmp_path, 100_000)
    bt = qaexchange.Backtest(tmp_path / "j", m, b, mode="exact")

    class Batched:
        n = 0

        def on_batch(self, a):
            Batched.n += len(a["time_ns"])

    took, pause = longest_pause_during(lambda: bt.run(Batched(), batch=10**6))  # one batch
    assert Batched.n == 200_000
    assert took > 0.1, "too little work to tell"
    assert pause < took / 2, (took, pause)
