#include "sim/binance.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "sim/text.h"

namespace qx::sim {

using replay::Error;
using replay::Result;
using replay::Status;

namespace {

constexpr std::size_t kTradeColumns = 8;
constexpr std::size_t kBboColumns = 8;

// A non-negative integer field, or an error naming it.
Result<std::int64_t> count_field(const char* name, std::string_view f) {
  std::int64_t v = 0;
  if (!text::digits_value(f, v)) {
    return Error{std::string(name) + " " + text::quoted(f) + " is not a non-negative integer"};
  }
  return v;
}

// A positive scaled decimal, or an error naming it.
Result<std::int64_t> positive_field(const char* name, std::string_view f, int decimals) {
  Result<std::int64_t> r = text::parse_fixed(f, decimals);
  if (!r.ok()) return Error{std::string(name) + " " + r.error().message};
  if (r.value() <= 0) return Error{std::string(name) + " " + text::quoted(f) + " must be positive"};
  return r;
}

}  // namespace

Result<BinanceTrade> parse_binance_trade(std::string_view line, const BinanceScale& scale) {
  line = text::chomp(line);
  std::string_view f[kTradeColumns];
  if (!text::split(line, kTradeColumns, f)) {
    return Error{std::to_string(text::csv_columns(line)) + " columns, expected 8 (" +
                 std::string(kBinanceTradesHeader) + ")"};
  }
  static constexpr const char* kNames[4] = {"local_ts_ns", "event_time_ms", "trade_time_ms",
                                            "trade_id"};
  std::int64_t v[4] = {};
  for (std::size_t i = 0; i < 4; ++i) {
    Result<std::int64_t> r = count_field(kNames[i], f[i]);
    if (!r.ok()) return r.error();
    v[i] = r.value();
  }
  Result<std::int64_t> price = positive_field("price", f[4], scale.price_decimals);
  if (!price.ok()) return price.error();
  Result<std::int64_t> qty = positive_field("qty", f[5], scale.qty_decimals);
  if (!qty.ok()) return qty.error();
  if (f[6] != "0" && f[6] != "1") {
    return Error{"is_buyer_maker " + text::quoted(f[6]) + " is not 0 or 1"};
  }
  if (f[7] != "buy" && f[7] != "sell") {
    return Error{"aggressor_side " + text::quoted(f[7]) + " is not buy or sell"};
  }
  bool buyer_maker = f[6] == "1";
  if (buyer_maker != (f[7] == "sell")) {
    return Error{"aggressor_side " + text::quoted(f[7]) + " contradicts is_buyer_maker " +
                 std::string(f[6])};
  }
  BinanceTrade t;
  t.local_ts_ns = v[0];
  t.event_time_ms = v[1];
  t.trade_time_ms = v[2];
  t.trade_id = static_cast<std::uint64_t>(v[3]);
  t.price = price.value();
  t.qty = qty.value();
  t.aggressor = buyer_maker ? core::Direction::kSell : core::Direction::kBuy;
  return t;
}

Result<BinanceBbo> parse_binance_bbo(std::string_view line, const BinanceScale& scale) {
  line = text::chomp(line);
  std::string_view f[kBboColumns];
  if (!text::split(line, kBboColumns, f)) {
    return Error{std::to_string(text::csv_columns(line)) + " columns, expected 8 (" +
                 std::string(kBinanceBboHeader) + ")"};
  }
  static constexpr const char* kNames[4] = {"local_ts_ns", "event_time_ms", "transaction_time_ms",
                                            "update_id"};
  std::int64_t v[4] = {};
  for (std::size_t i = 0; i < 4; ++i) {
    Result<std::int64_t> r = count_field(kNames[i], f[i]);
    if (!r.ok()) return r.error();
    v[i] = r.value();
  }
  static constexpr const char* kSides[4] = {"bid_price", "bid_qty", "ask_price", "ask_qty"};
  std::int64_t s[4] = {};
  for (std::size_t i = 0; i < 4; ++i) {
    bool is_price = i % 2 == 0;
    Result<std::int64_t> r =
        positive_field(kSides[i], f[4 + i], is_price ? scale.price_decimals : scale.qty_decimals);
    if (!r.ok()) return r.error();
    s[i] = r.value();
  }
  if (s[0] >= s[2]) {
    return Error{"crossed or locked: bid_price " + std::string(f[4]) + " >= ask_price " +
                 std::string(f[6])};
  }
  BinanceBbo b;
  b.local_ts_ns = v[0];
  b.event_time_ms = v[1];
  b.transaction_time_ms = v[2];
  b.update_id = static_cast<std::uint64_t>(v[3]);
  b.bid_price = s[0];
  b.bid_qty = s[1];
  b.ask_price = s[2];
  b.ask_qty = s[3];
  return b;
}

struct BinanceReader::Source {
  std::string path;
  gzFile file = nullptr;
  bool is_trades = false;
  std::string line;
  std::uint64_t line_no = 0;
  bool pending = false;  // a parsed record waits in trade / bbo
  BinanceTrade trade;
  BinanceBbo bbo;
  std::int64_t last_ts = 0;

  ~Source() {
    if (file != nullptr) gzclose(file);
  }
  [[nodiscard]] std::int64_t ts() const { return is_trades ? trade.local_ts_ns : bbo.local_ts_ns; }
  [[nodiscard]] Error at(std::string_view what) const {
    return Error{path + ":" + std::to_string(line_no) + ": " + std::string(what)};
  }

  // Reads one line into `line` (without '\n'); false at the end of the file.
  Result<bool> read_line() {
    line.clear();
    char buf[4096];
    for (;;) {
      if (gzgets(file, buf, sizeof buf) == nullptr) {
        int err = 0;
        const char* msg = gzerror(file, &err);
        if (err != Z_OK && err != Z_BUF_ERROR) return at(std::string("read error: ") + msg);
        if (!gzeof(file)) return at(std::string("read error: ") + msg);
        if (line.empty()) return false;
        ++line_no;
        return true;  // last line without '\n'
      }
      std::size_t n = std::strlen(buf);
      line.append(buf, n);
      if (n > 0 && buf[n - 1] == '\n') {
        line.pop_back();
        ++line_no;
        return true;
      }
    }
  }
};

BinanceReader::BinanceReader() = default;
BinanceReader::BinanceReader(BinanceReader&&) noexcept = default;
BinanceReader& BinanceReader::operator=(BinanceReader&&) noexcept = default;
BinanceReader::~BinanceReader() = default;

Result<BinanceReader> BinanceReader::open(const std::string& trades_path,
                                          const std::string& bbo_path, const BinanceScale& scale) {
  if (trades_path.empty() && bbo_path.empty()) return Error{"no trades file and no BBO file"};
  BinanceReader reader;
  reader.scale_ = scale;
  for (int i = 0; i < 2; ++i) {
    const std::string& path = i == 0 ? trades_path : bbo_path;
    if (path.empty()) continue;
    auto s = std::make_unique<Source>();
    s->path = path;
    s->is_trades = i == 0;
    errno = 0;
    s->file = gzopen(path.c_str(), "rb");
    if (s->file == nullptr) {
      return Error{path + ": cannot open: " + (errno != 0 ? std::strerror(errno) : "zlib error")};
    }
    Result<bool> got = s->read_line();
    if (!got.ok()) return got.error();
    std::string_view want = s->is_trades ? kBinanceTradesHeader : kBinanceBboHeader;
    if (!got.value()) return s->at("empty file, expected the header " + std::string(want));
    if (text::chomp(s->line) != want) {
      return s->at("header " + text::quoted(s->line) + " is not " + std::string(want));
    }
    Status st = reader.advance(*s);
    if (!st.ok()) return st.error();
    (i == 0 ? reader.trades_ : reader.bbo_) = std::move(s);
  }
  return reader;
}

Status BinanceReader::advance(Source& s) {
  s.pending = false;
  Result<bool> got = s.read_line();
  if (!got.ok()) return got.error();
  if (!got.value()) return Status{};
  if (s.is_trades) {
    Result<BinanceTrade> t = parse_binance_trade(s.line, scale_);
    if (!t.ok()) return s.at(t.error().message);
    s.trade = t.value();
  } else {
    Result<BinanceBbo> b = parse_binance_bbo(s.line, scale_);
    if (!b.ok()) return s.at(b.error().message);
    s.bbo = b.value();
  }
  if (s.ts() < s.last_ts) {
    return s.at("local_ts_ns " + std::to_string(s.ts()) + " is before the previous line's " +
                std::to_string(s.last_ts));
  }
  s.last_ts = s.ts();
  s.pending = true;
  return Status{};
}

Result<bool> BinanceReader::next(BinanceTick& tick) {
  bool trade_ready = trades_ && trades_->pending;
  bool bbo_ready = bbo_ && bbo_->pending;
  if (!trade_ready && !bbo_ready) return false;
  // A BBO update goes before a trade that arrived at the same time.
  bool take_trade = trade_ready && (!bbo_ready || trades_->ts() < bbo_->ts());
  Source& s = take_trade ? *trades_ : *bbo_;
  if (take_trade) {
    tick.kind = BinanceTickKind::kTrade;
    tick.trade = s.trade;
    const BinanceTrade& t = s.trade;
    if (stats_.trades > 0 && t.trade_id != last_trade_id_ + 1) ++stats_.trade_id_gaps;
    if (stats_.trades == 0 || t.price < stats_.min_price) stats_.min_price = t.price;
    if (stats_.trades == 0 || t.price > stats_.max_price) stats_.max_price = t.price;
    last_trade_id_ = t.trade_id;
    ++stats_.trades;
    ++(t.aggressor == core::Direction::kBuy ? stats_.buy_aggressor : stats_.sell_aggressor);
  } else {
    tick.kind = BinanceTickKind::kBbo;
    tick.bbo = s.bbo;
    ++stats_.bbos;
  }
  Status st = advance(s);
  if (!st.ok()) return st.error();
  return true;
}

}  // namespace qx::sim
