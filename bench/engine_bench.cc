// Engine benchmarks: exchange-core's command mix on one book, and the engine at scale.
//
//   BM_ExchangeCoreMix         commands/s over ~1M precomputed commands (1 instrument, 2,000
//                              accounts, ~1,000 resting orders over ~750 levels; 82% amend, 9%
//                              new GTC, 6% cancel, 3% IOC). Each iteration replays them on a
//                              fresh engine built from the same setup; only the commands are timed.
//   BM_ExchangeCoreMixLatency  the same stream, each apply timed alone (rdtsc, calibrated against
//                              steady_clock): p50 / p99 / p99.9 / p99.99 / max service time in ns.
//   BM_Scale                   10,000 instruments, 1,000,000 accounts, 10,000,000 resting orders
//                              (built once, streamed, RSS measured before and after each phase);
//                              then commands/s for the same mix across all instruments, generated
//                              in batches of 65,536 between timed runs.
//   BM_ScaleLatency            per-command service time at that scale.
//
// Sizes come from the environment so that a quick run is possible:
//   QX_BENCH_MIX_COMMANDS (1000000), QX_BENCH_SCALE_INSTRUMENTS (10000),
//   QX_BENCH_SCALE_ACCOUNTS (1000000), QX_BENCH_SCALE_ORDERS (10000000).
//
// Design: commands are generated before timing by sim::MixGenerator driving a shadow engine
// (the generator reacts to effects, like a client), so the timed loop is apply() and nothing
// else. Engines are deterministic, so the timed engine sees exactly what the shadow saw.
// This file is outside core/, so clocks and floating point are fine here.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "core/engine.h"
#include "sim/workload.h"

namespace qx::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0' || x == 0) {
    std::fprintf(stderr, "qx_engine_bench: %s=%s is not a positive integer; using %llu\n", name, v,
                 static_cast<unsigned long long>(fallback));
    return fallback;
  }
  return x;
}

// Resident set size from /proc/self/statm (second field, in pages).
std::int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long size = 0;
  long long resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : 0;
}

// Bytes the allocator has handed out and not taken back (glibc). Unlike RSS, it does not depend
// on which freed pages an allocation happens to reuse.
std::int64_t heap_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<std::int64_t>(m.uordblks + m.hblkhd);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A cheap per-command clock: the time-stamp counter where there is one, else steady_clock.
inline std::uint64_t ticks() {
#if defined(__x86_64__)
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
#endif
}

double ns_per_tick() {
  static const double value = [] {
#if defined(__x86_64__)
    const auto t0 = Clock::now();
    const std::uint64_t c0 = ticks();
    while (seconds_since(t0) < 0.2) {
    }
    const std::uint64_t c1 = ticks();
    return seconds_since(t0) * 1e9 / static_cast<double>(c1 - c0);
#else
    return 1e9 * Clock::period::num / Clock::period::den;
#endif
  }();
  return value;
}

// Median cost of the timing itself (two back-to-back reads), in ticks.
std::uint64_t timer_overhead_ticks() {
  std::vector<std::uint64_t> d(100'000);
  for (std::uint64_t& x : d) {
    const std::uint64_t a = ticks();
    const std::uint64_t b = ticks();
    x = b - a;
  }
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2), d.end());
  return d[d.size() / 2];
}

void report_percentiles(benchmark::State& state, std::vector<std::uint64_t>& samples) {
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  const double k = ns_per_tick();
  auto at = [&](double q) {
    const auto i = std::min(samples.size() - 1,
                            static_cast<std::size_t>(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[i]) * k;
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p99.9_ns"] = at(0.999);
  state.counters["p99.99_ns"] = at(0.9999);
  state.counters["max_ns"] = static_cast<double>(samples.back()) * k;
  state.counters["timer_ns"] = static_cast<double>(timer_overhead_ticks()) * k;
}

// ---------------------------------------------------------------------------------------------
// exchange-core's mix on one book

struct MixWorkload {
  std::vector<core::Event> setup;     // instruments, users, accounts, deposits, prefill
  std::vector<core::Event> commands;  // the timed stream
  double trade_share = 0;             // commands that made at least one trade
  double resting_mean = 0;            // resting orders, averaged over the stream
  std::uint64_t levels_end = 0;       // price levels when the stream ends
  std::uint64_t levels_start = 0;
};

const MixWorkload& mix_workload() {
  static const MixWorkload w = [] {
    MixWorkload m;
    sim::MixGenerator gen(sim::MixConfig{});
    core::Engine shadow;
    core::EffectBuffer effects;
    while (gen.phase() != sim::MixGenerator::Phase::kCommands) {
      m.setup.push_back(gen.next());
      effects.clear();
      shadow.apply(m.setup.back(), effects);
      gen.observe(effects);
    }
    gen.load(shadow.snapshot());
    auto levels = [&shadow] {
      const core::BookView b = shadow.book(core::InstrumentId(0), 1'000'000);
      return static_cast<std::uint64_t>(b.bids.size() + b.asks.size());
    };
    m.levels_start = levels();
    const std::uint64_t n = env_u64("QX_BENCH_MIX_COMMANDS", 1'000'000);
    m.commands.reserve(n);
    std::uint64_t traded = 0;
    std::uint64_t resting_sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      m.commands.push_back(gen.next());
      effects.clear();
      shadow.apply(m.commands.back(), effects);
      gen.observe(effects);
      traded += std::any_of(effects.begin(), effects.end(), [](const core::Effect& e) {
        return e.kind == core::EffectKind::kTrade;
      });
      resting_sum += gen.model().live_count();
    }
    m.trade_share = static_cast<double>(traded) / static_cast<double>(n);
    m.resting_mean = static_cast<double>(resting_sum) / static_cast<double>(n);
    m.levels_end = levels();
    return m;
  }();
  return w;
}

core::Engine fresh_mix_engine(const MixWorkload& w, core::EffectBuffer& effects) {
  core::Engine engine;
  for (const core::Event& e : w.setup) {
    effects.clear();
    engine.apply(e, effects);
  }
  return engine;
}

void mix_counters(benchmark::State& state, const MixWorkload& w) {
  state.counters["commands"] = static_cast<double>(w.commands.size());
  state.counters["trade_share"] = w.trade_share;
  state.counters["resting_mean"] = w.resting_mean;
  state.counters["levels_start"] = static_cast<double>(w.levels_start);
  state.counters["levels_end"] = static_cast<double>(w.levels_end);
}

void BM_ExchangeCoreMix(benchmark::State& state) {
  const MixWorkload& w = mix_workload();
  core::EffectBuffer effects;
  effects.reserve(4'096);
  for (auto _ : state) {
    core::Engine engine = fresh_mix_engine(w, effects);
    const auto t0 = Clock::now();
    for (const core::Event& e : w.commands) {
      effects.clear();
      engine.apply(e, effects);
    }
    state.SetIterationTime(seconds_since(t0));
    benchmark::DoNotOptimize(engine.effects_hash());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(w.commands.size()));
  mix_counters(state, w);
}
BENCHMARK(BM_ExchangeCoreMix)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_ExchangeCoreMixLatency(benchmark::State& state) {
  const MixWorkload& w = mix_workload();
  core::EffectBuffer effects;
  effects.reserve(4'096);
  std::vector<std::uint64_t> samples;
  samples.reserve(w.commands.size());
  for (auto _ : state) {
    samples.clear();
    core::Engine engine = fresh_mix_engine(w, effects);
    const auto t0 = Clock::now();
    for (const core::Event& e : w.commands) {
      effects.clear();
      const std::uint64_t a = ticks();
      engine.apply(e, effects);
      samples.push_back(ticks() - a);
    }
    state.SetIterationTime(seconds_since(t0));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(w.commands.size()));
  report_percentiles(state, samples);
  mix_counters(state, w);
}
BENCHMARK(BM_ExchangeCoreMixLatency)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

// ---------------------------------------------------------------------------------------------
// Scale: 10K instruments, 1M accounts, 10M resting orders

constexpr std::size_t kScaleBatch = 65'536;

struct ScaleWorld {
  std::unique_ptr<sim::MixGenerator> gen;
  core::Engine engine;
  core::EffectBuffer effects;
  std::vector<core::Event> batch;
  sim::MixConfig config;
  double setup_s = 0;
  double prefill_s = 0;
  double bytes_per_account = 0;  // heap in use, per account (with its user)
  double bytes_per_order = 0;    // heap in use, per resting order
  double rss_bytes_per_account = 0;
  double rss_bytes_per_order = 0;
  double rss_gib = 0;

  ScaleWorld() {
    config.instruments = static_cast<std::uint32_t>(env_u64("QX_BENCH_SCALE_INSTRUMENTS", 10'000));
    config.accounts = static_cast<std::uint32_t>(env_u64("QX_BENCH_SCALE_ACCOUNTS", 1'000'000));
    config.resting_orders = env_u64("QX_BENCH_SCALE_ORDERS", 10'000'000);
    config.seed = 7;
    gen = std::make_unique<sim::MixGenerator>(config);
    effects.reserve(1 << 20);
    // Heap in use and RSS before and after each phase. The generator's own memory during
    // setup and prefill is a few ids per account (8 B), counted in the per-account figure.
    const std::int64_t heap0 = heap_bytes();
    const std::int64_t rss0 = rss_bytes();
    auto t0 = Clock::now();
    while (gen->phase() == sim::MixGenerator::Phase::kSetup) step();
    setup_s = seconds_since(t0);
    const std::int64_t heap1 = heap_bytes();
    const std::int64_t rss1 = rss_bytes();
    t0 = Clock::now();
    while (gen->phase() == sim::MixGenerator::Phase::kPrefill) step();
    prefill_s = seconds_since(t0);
    const std::int64_t heap2 = heap_bytes();
    const std::int64_t rss2 = rss_bytes();
    const auto orders = static_cast<double>(config.resting_orders);
    bytes_per_account = static_cast<double>(heap1 - heap0) / config.accounts;
    bytes_per_order = static_cast<double>(heap2 - heap1) / orders;
    rss_bytes_per_account = static_cast<double>(rss1 - rss0) / config.accounts;
    rss_bytes_per_order = static_cast<double>(rss2 - rss1) / orders;
    rss_gib = static_cast<double>(rss2) / (1 << 30);
    std::fprintf(stderr,
                 "scale world: %u instruments, %u accounts, %llu resting orders; setup %.1f s, "
                 "prefill %.1f s; heap %.0f B/account, %.0f B/order; RSS delta %.0f B/account, "
                 "%.0f B/order; RSS %.2f GiB\n",
                 config.instruments, config.accounts,
                 static_cast<unsigned long long>(engine.stats().orders_resting), setup_s, prefill_s,
                 bytes_per_account, bytes_per_order, rss_bytes_per_account, rss_bytes_per_order,
                 rss_gib);
    gen->load(engine.snapshot());
    batch.reserve(kScaleBatch);
  }

  void step() {
    const core::Event e = gen->next();
    effects.clear();
    engine.apply(e, effects);
    gen->observe(effects);
  }

  void next_batch() {
    batch.clear();
    for (std::size_t i = 0; i < kScaleBatch; ++i) batch.push_back(gen->next());
    effects.clear();
  }
};

ScaleWorld& scale_world() {
  static ScaleWorld w;
  return w;
}

void scale_counters(benchmark::State& state, const ScaleWorld& w) {
  state.counters["instruments"] = w.config.instruments;
  state.counters["accounts"] = w.config.accounts;
  state.counters["resting"] = static_cast<double>(w.engine.stats().orders_resting);
  state.counters["B_per_order"] = w.bytes_per_order;
  state.counters["B_per_account"] = w.bytes_per_account;
  state.counters["rss_B_per_order"] = w.rss_bytes_per_order;
  state.counters["rss_B_per_account"] = w.rss_bytes_per_account;
  state.counters["prefill_orders_per_s"] =
      static_cast<double>(w.config.resting_orders) / w.prefill_s;
  state.counters["rss_GiB"] = w.rss_gib;
}

void BM_Scale(benchmark::State& state) {
  ScaleWorld& w = scale_world();
  for (auto _ : state) {
    w.next_batch();
    const auto t0 = Clock::now();
    for (const core::Event& e : w.batch) w.engine.apply(e, w.effects);
    state.SetIterationTime(seconds_since(t0));
    w.gen->observe(w.effects);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kScaleBatch));
  scale_counters(state, w);
}
BENCHMARK(BM_Scale)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_ScaleLatency(benchmark::State& state) {
  ScaleWorld& w = scale_world();
  std::vector<std::uint64_t> samples;
  samples.reserve(kScaleBatch * 16);
  for (auto _ : state) {
    w.next_batch();
    const auto t0 = Clock::now();
    for (const core::Event& e : w.batch) {
      const std::uint64_t a = ticks();
      w.engine.apply(e, w.effects);
      samples.push_back(ticks() - a);
    }
    state.SetIterationTime(seconds_since(t0));
    w.gen->observe(w.effects);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kScaleBatch));
  report_percentiles(state, samples);
  scale_counters(state, w);
}
BENCHMARK(BM_ScaleLatency)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(16);

// ---------------------------------------------------------------------------------------------
// Settle with a liquidation ratio set: every account is checked once per settlement. The argument
// is the number of accounts; each is funded, holds a one-lot position (accounts trade in pairs)
// and has one resting GTC order away from the touch, so the figure is the cost of the
// per-account pass over positions and orders, which must grow linearly.

void BM_SettleAccounts(benchmark::State& state) {
  const auto accounts = static_cast<std::uint32_t>(state.range(0));
  core::Engine engine;
  core::EffectBuffer fx;
  std::uint64_t seq = 0;
  auto apply = [&](core::EventBody body) {
    ++seq;
    fx.clear();
    engine.apply(core::Event{{core::Seq(seq), static_cast<std::int64_t>(seq), 0}, std::move(body)},
                 fx);
  };
  core::InstrumentParams p;
  p.price_tick_e8 = 20'000'000;  // IF: tick 0.2, x300, 10% margin, no band
  p.multiplier_e8 = 30'000'000'000;
  p.margin_long_ppb = p.margin_short_ppb = 100'000'000;
  p.max_order_volume = core::Lots(10);
  p.position_limit = core::Lots(10);
  apply(core::CreateInstrument{"IF", "CFFEX", p, core::PriceTicks(19'000)});
  apply(core::CreateUser{"u"});
  const core::UserId user = *engine.find_user("u");
  auto order = [&](std::uint32_t a, core::Direction d, std::int64_t price) {
    apply(core::NewOrder{core::AccountId(a), core::InstrumentId(0), core::ClientOrderId(0), d,
                         core::Offset::kOpen, core::PriceType::kLimit, core::PriceTicks(price),
                         core::Lots(1), core::TimeCondition::kGtc, core::VolumeCondition::kAny,
                         false});
  };
  for (std::uint32_t i = 0; i < accounts; ++i) {
    apply(core::CreateAccount{user, "a" + std::to_string(i)});
    apply(core::Deposit{core::AccountId(i), core::Money(2'000'000'000)});  // 200,000 CNY
    if (i % 2 == 1) {
      order(i - 1, core::Direction::kBuy, 19'000);  // rests, then i takes it: a pair of positions
      order(i, core::Direction::kSell, 19'000);
      order(i - 1, core::Direction::kBuy, 18'000 - static_cast<std::int64_t>(i % 500));
      order(i, core::Direction::kSell, 20'000 + static_cast<std::int64_t>(i % 500));
    }
  }
  apply(core::SetRiskParams{800'000'000});
  double total_s = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    apply(core::Settle{});
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    state.SetIterationTime(s);
    total_s += s;
  }
  state.counters["accounts"] = accounts;
  state.counters["ns_per_account"] =
      total_s * 1e9 / (static_cast<double>(state.iterations()) * accounts);
}
BENCHMARK(BM_SettleAccounts)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qx::bench

BENCHMARK_MAIN();
