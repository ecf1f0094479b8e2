// Properties of the server's K-lines (server/klines.h) over generated trade streams: a stream
// split anywhere into a replayed history and a live part, joined by absorb_history, gives the
// bars of the whole stream fed at once; and every bar agrees with a direct recomputation from
// the trades that fall in it.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>

#include "server/klines.h"

namespace qx::property {
namespace {

struct Trade {
  std::uint32_t instrument;
  std::int64_t ts, price, volume;
};

// Trades with non-decreasing timestamps (as a journal stamps them), a few instruments, gaps from
// zero to several days so that bars of every period open and close.
rc::Gen<std::vector<Trade>> trades_gen() {
  return rc::gen::map(
      rc::gen::container<
          std::vector<std::tuple<std::uint32_t, std::int64_t, std::int64_t, std::int64_t>>>(
          rc::gen::tuple(rc::gen::inRange<std::uint32_t>(0, 3),
                         rc::gen::weightedOneOf<std::int64_t>(
                             {{4, rc::gen::just<std::int64_t>(0)},
                              {8, rc::gen::inRange<std::int64_t>(0, 90'000'000'000)},
                              {1, rc::gen::inRange<std::int64_t>(0, 3 * 86'400'000'000'000)}}),
                         rc::gen::inRange<std::int64_t>(1, 10'000),
                         rc::gen::inRange<std::int64_t>(1, 50))),
      [](const auto& raw) {
        std::vector<Trade> out;
        std::int64_t t = 1'700'000'000'000'000'000;
        for (const auto& [ins, gap, price, volume] : raw) {
          t += gap;
          out.push_back(Trade{ins, t, price, volume});
        }
        return out;
      });
}

void feed(server::Klines& k, const std::vector<Trade>& ts, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i)
    k.on_trade(ts[i].instrument, ts[i].ts, ts[i].price, ts[i].volume);
}

RC_GTEST_PROP(Klines, HistoryPlusLiveEqualsOneStream, ()) {
  const auto trades = *trades_gen();
  const auto split = *rc::gen::inRange<std::size_t>(0, trades.size() + 1);
  server::Klines whole, history, live;
  feed(whole, trades, 0, trades.size());
  feed(history, trades, 0, split);
  feed(live, trades, split, trades.size());
  live.absorb_history(history);
  for (std::uint32_t ins = 0; ins < 3; ++ins) {
    for (server::Period p : server::kPeriods) {
      RC_ASSERT(live.query(ins, p, 1'000'000) == whole.query(ins, p, 1'000'000));
    }
  }
}

RC_GTEST_PROP(Klines, BarsAgreeWithTheirTrades, ()) {
  const auto trades = *trades_gen();
  server::Klines k;
  feed(k, trades, 0, trades.size());
  for (server::Period p : server::kPeriods) {
    const std::int64_t len = server::period_ns(p);
    for (std::uint32_t ins = 0; ins < 3; ++ins) {
      std::map<std::int64_t, server::Kline> expect;  // by bar start
      for (const Trade& t : trades) {
        if (t.instrument != ins) continue;
        const std::int64_t start = t.ts / len * len;  // timestamps here are positive
        auto [it, fresh] = expect.try_emplace(
            start, server::Kline{start, t.price, t.price, t.price, t.price, 0, 0});
        auto& b = it->second;
        b.high = std::max(b.high, t.price);
        b.low = std::min(b.low, t.price);
        b.close = t.price;
        b.volume += t.volume;
        b.trades += 1;
      }
      std::vector<server::Kline> want;
      for (const auto& [start, b] : expect) want.push_back(b);
      if (want.size() > server::Klines::kKeep) {
        want.erase(want.begin(), want.end() - server::Klines::kKeep);
      }
      RC_ASSERT(k.query(ins, p, 1'000'000) == want);
    }
  }
}

}  // namespace
}  // namespace qx::property
