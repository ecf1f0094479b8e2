"""Where the examples find the shared data sets: $QX_SHARED_DATA, else ../shared/data beside the
repository. Read in place, never copied. Missing data: a message and exit status 2."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("QX_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _need(*paths):
    for p in paths:
        if not Path(p).exists():
            print(f"data not found: {p} (set QX_SHARED_DATA to the shared data folder)",
                  file=sys.stderr)
            sys.exit(2)
    return paths


def lobster_files(levels=5):
    stem = DATA / "lobster" / f"AMZN_2012-06-21_{levels}" / "AMZN_2012-06-21_34200000_57600000_"
    return _need(f"{stem}message_{levels}.csv", f"{stem}orderbook_{levels}.csv")


def binance_files():
    d = DATA / "ticks" / "binance_usdm_btcusdt_2024-08-08"
    return _need(d / "trades.csv", d / "bbo.csv.gz")


def out_dir(name, argv):
    """--out DIR from argv, else build/examples/NAME; the journal inside is made anew."""
    import shutil
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else ROOT / "build" / "examples" / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "journal", ignore_errors=True)
    return out


def report(bt, out, title):
    """The statistics table, the PNG, and the closing `journal=DIR state_hash=HEX` line."""
    f = bt.fills()
    s = bt.stats()
    e = bt.equity()
    rows = [
        ("mode", bt.mode),
        ("events read", f"{bt.events_read}"),
        ("orders", f"{len(bt.orders())}"),
        ("fills", f"{len(f)}"),
        ("maker fills", f"{int(f['maker'].sum()) if len(f) else 0}"),
        ("volume (lots)", f"{int(f['volume'].sum()) if len(f) else 0}"),
        ("final position (lots)", f"{bt.position}"),
        ("final equity", f"{e['equity'].iloc[-1]:.2f}"),
        ("pnl", f"{s['pnl']:.2f}"),
        ("total return", f"{s['total_return'] * 100:.4f}%"),
        ("sharpe (per sample)", f"{s['sharpe']:.4f}"),
        ("max drawdown", f"{s['max_drawdown'] * 100:.4f}%"),
        ("fees", f"{s['fees']:.2f}"),
        ("turnover", f"{s['turnover']:.4f}"),
        ("win rate", f"{s['win_rate']:.4f}"),
    ]
    print(title)
    print("-" * 48)
    for k, v in rows:
        print(f"{k:<24}{v:>24}")
    print("-" * 48)
    png = out / "equity.png"
    bt.plot(png, title)
    print(f"plot={png}")
    print(f"journal={bt.journal_dir} state_hash={bt.state_hash}")
