"""qaexchange.Journal: events and statements against `qx audit` on the same journal."""
import pandas as pd
import pytest

import qaexchange
from conftest import qx_json

ACCOUNT = "acct100001"


@pytest.fixture(scope="module")
def journal(demo_journal):
    return qaexchange.Journal(demo_journal[0])


def test_names(journal):
    assert journal.last_seq == 20000
    assert journal.instruments == ["IF2501", "cu2501", "au2506"]
    assert len(journal.accounts) == 200 and journal.accounts[1] == ACCOUNT


@pytest.mark.parametrize("account,instrument", [(ACCOUNT, None), (None, "au2506"),
                                                (ACCOUNT, "IF2501")])
def test_events_match_qx_audit_events(journal, demo_journal, account, instrument):
    args = ["audit", demo_journal[0], "events", "--format", "json"]
    if account:
        args += ["--account", account]
    if instrument:
        args += ["--instrument", instrument]
    expected = qx_json(*args)
    df = journal.events(account=account, instrument=instrument)
    assert len(df) == len(expected) > 0
    assert list(df["seq"]) == [e["seq"] for e in expected]
    for row, e in zip(df.to_dict("records"), expected):
        for k, v in e.items():
            assert row[k] == v, (row["seq"], k)


def test_events_columns_and_order_ids(journal):
    df = journal.events(account=ACCOUNT)
    assert list(df.columns[:8]) == ["seq", "time", "timestamp_ns", "source", "type", "account",
                                    "instrument", "order_id"]
    assert df["seq"].is_monotonic_increasing
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert df["time"].iloc[0] == pd.Timestamp(int(df["timestamp_ns"].iloc[0]), unit="ns", tz="UTC")
    # Every accepted new order of the account carries the exchange's order id from its effects.
    new = df[(df["type"] == "NewOrder") & (df["account"] == ACCOUNT)]
    accepted = new[new["effects"].map(lambda fx: fx[0]["kind"] == "ORDER_ACCEPTED")]
    assert len(accepted) > 0
    assert (accepted["order_id"] == accepted["effects"].map(lambda fx: fx[0]["order_id"])).all()
    rejected = new[new["effects"].map(lambda fx: fx[0]["kind"] == "ORDER_REJECTED")]
    assert rejected["order_id"].isna().all()
    assert df["type"].iloc[0] == "CreateAccount" and df["account"].iloc[0] == ACCOUNT


def test_all_events(journal):
    df = journal.events()
    assert list(df["seq"]) == list(range(1, 20001))
    assert df["type"].value_counts()["NewOrder"] > 10000


def test_unknown_names_raise(journal):
    with pytest.raises(KeyError):
        journal.events(account="nobody")
    with pytest.raises(KeyError):
        journal.statement("nobody")
    with pytest.raises(KeyError):
        journal.events(instrument="XX")


@pytest.mark.parametrize("at_seq", [None, 1000, 5000, 12345])
def test_statement_matches_qx_audit_statement(journal, demo_journal, at_seq):
    args = ["audit", demo_journal[0], "statement", ACCOUNT, "--json"]
    if at_seq:
        args += ["--at-seq", at_seq]
    expected = qx_json(*args)
    assert journal.statement_json(ACCOUNT, at_seq=at_seq) == expected
    st = journal.statement(ACCOUNT, at_seq=at_seq)
    assert st["at_seq"] == (at_seq or 20000)
    assert st["account"] == expected["accounts"]
    assert sorted(st["positions"].index) == sorted(expected["positions"])
    assert list(st["orders"].index) == sorted(int(k) for k in expected["orders"])
    assert sorted(st["trades"].index) == sorted(int(k) for k in expected["trades"])
    if len(st["trades"]):
        t = st["trades"].iloc[0]
        assert expected["trades"][str(st["trades"].index[0])]["volume"] == t["volume"]


def test_statement_money_adds_up(journal):
    # QIFI identities, in integer minor units (4 decimal places).
    a = journal.statement(ACCOUNT)["account"]
    m = {k: round(float(v) * 10000) for k, v in a.items()
         if k not in ("user_id", "account_id", "currency", "risk_ratio")}
    assert m["static_balance"] == m["pre_balance"] + m["deposit"] - m["withdraw"]
    assert m["balance"] == (m["static_balance"] + m["close_profit"] - m["commission"]
                            + m["position_profit"])
    assert m["available"] == (m["balance"] - m["margin"] - m["frozen_margin"]
                              - m["frozen_commission"])
    pos = journal.statement(ACCOUNT)["positions"]
    assert round(pos["position_profit"].astype(float).sum() * 10000) == m["position_profit"]
