"""A PNG of a backtest: equity, drawdown (from the running peak) and net position, one panel each.

    save(equity_frame, "bt.png")   # columns equity and net, indexed by time

matplotlib with the Agg backend (no display needed); imported only when a plot is asked for.
"""
from __future__ import annotations

import pandas as pd


def save(equity: pd.DataFrame, path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    eq = equity["equity"].astype(float)
    dd = eq / eq.cummax() - 1.0
    fig, ax = plt.subplots(3, 1, figsize=(10, 7), sharex=True,
                           gridspec_kw={"height_ratios": [3, 1.5, 1.5]})
    ax[0].plot(eq.index, eq.values, lw=0.8, color="tab:blue")
    ax[0].set_ylabel("equity")
    ax[0].set_title(title)
    ax[1].fill_between(dd.index, dd.values * 100.0, 0.0, color="tab:red", alpha=0.5, lw=0)
    ax[1].set_ylabel("drawdown %")
    ax[2].step(equity.index, equity["net"].values, where="post", lw=0.8, color="tab:green")
    ax[2].set_ylabel("position")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
