// Tests of sim/text.h's decimal parsing and sim/binance.h: trade and BBO rows (good and
// malformed), the merged reader over plain and gzip files with its file:line errors, and the
// shared BTCUSDT sample's published facts (skipped when ../shared/data is absent).
#include "sim/binance.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sim/text.h"

namespace qx::sim {
namespace {

namespace fs = std::filesystem;
using core::Direction;

TEST(FixedDecimal, ScalesWithoutRounding) {
  EXPECT_EQ(text::parse_fixed("61800.30", 1).value(), 618'003);
  EXPECT_EQ(text::parse_fixed("61800.3", 2).value(), 6'180'030);
  EXPECT_EQ(text::parse_fixed("61800", 1).value(), 618'000);
  EXPECT_EQ(text::parse_fixed("0.006", 3).value(), 6);
  EXPECT_EQ(text::parse_fixed("0.0060000", 3).value(), 6);
  EXPECT_EQ(text::parse_fixed("12", 0).value(), 12);
  EXPECT_EQ(text::parse_fixed("-1.5", 1, true).value(), -15);
  EXPECT_EQ(text::parse_fixed("922337203685477580.7", 1).value(), INT64_MAX);
  struct Bad {
    const char* text;
    int decimals;
    const char* why;
  };
  for (const Bad& b :
       {Bad{"61800.35", 1, "more than 1 decimals"}, Bad{"0.0005", 3, "more than 3 decimals"},
        Bad{"-1", 0, "must not be negative"}, Bad{"", 1, "is not a decimal"},
        Bad{".5", 1, "is not a decimal"}, Bad{"5.", 1, "is not a decimal"},
        Bad{"1e5", 1, "is not a decimal"}, Bad{"1.2.3", 1, "is not a decimal"},
        Bad{" 1", 1, "is not a decimal"}, Bad{"NaN", 1, "is not a decimal"},
        Bad{"922337203685477580.8", 1, "too large"},
        Bad{"99999999999999999999", 0, "is not a decimal"}}) {
    replay::Result<std::int64_t> r = text::parse_fixed(b.text, b.decimals);
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_NE(r.error().message.find(b.why), std::string::npos) << r.error().message;
  }
}

TEST(BinanceParse, Trade) {
  BinanceTrade t = parse_binance_trade(
                       "1723161255088176367,1723161256322,1723161256323,5266583935,61800.30,"
                       "0.006,0,buy\r",
                       BinanceScale{})
                       .value();
  EXPECT_EQ(t.local_ts_ns, 1'723'161'255'088'176'367);
  EXPECT_EQ(t.event_time_ms, 1'723'161'256'322);
  EXPECT_EQ(t.trade_time_ms, 1'723'161'256'323);
  EXPECT_EQ(t.trade_id, 5'266'583'935u);
  EXPECT_EQ(t.price, 618'003);
  EXPECT_EQ(t.qty, 6);
  EXPECT_EQ(t.aggressor, Direction::kBuy);
  BinanceTrade s = parse_binance_trade("1,2,3,4,61590.30,1.000,1,sell", BinanceScale{}).value();
  EXPECT_EQ(s.aggressor, Direction::kSell);
  EXPECT_EQ(s.qty, 1'000);
}

TEST(BinanceParse, MalformedTradesSayWhy) {
  struct Bad {
    const char* line;
    const char* why;
  };
  for (const Bad& b : {Bad{"1,2,3,4,61800.3,0.006,0", "7 columns, expected 8"},
                       Bad{"1,2,3,4,61800.3,0.006,0,buy,x", "9 columns"},
                       Bad{"x,2,3,4,61800.3,0.006,0,buy", "local_ts_ns 'x'"},
                       Bad{"1,2,3,-4,61800.3,0.006,0,buy", "trade_id '-4'"},
                       Bad{"1,2,3,4,61800.35,0.006,0,buy", "price '61800.35' has more than 1"},
                       Bad{"1,2,3,4,0.0,0.006,0,buy", "price '0.0' must be positive"},
                       Bad{"1,2,3,4,61800.3,0.0065,0,buy", "qty '0.0065' has more than 3"},
                       Bad{"1,2,3,4,61800.3,0,0,buy", "qty '0' must be positive"},
                       Bad{"1,2,3,4,61800.3,0.006,2,buy", "is_buyer_maker '2'"},
                       Bad{"1,2,3,4,61800.3,0.006,0,BUY", "aggressor_side 'BUY'"},
                       Bad{"1,2,3,4,61800.3,0.006,1,buy", "contradicts is_buyer_maker 1"}}) {
    replay::Result<BinanceTrade> r = parse_binance_trade(b.line, BinanceScale{});
    ASSERT_FALSE(r.ok()) << b.line;
    EXPECT_NE(r.error().message.find(b.why), std::string::npos) << r.error().message;
  }
}

TEST(BinanceParse, Bbo) {
  BinanceBbo b =
      parse_binance_bbo("10,20,21,5123107839020,61800.20,2.507,61800.30,2.510", BinanceScale{})
          .value();
  EXPECT_EQ(b.local_ts_ns, 10);
  EXPECT_EQ(b.event_time_ms, 20);
  EXPECT_EQ(b.transaction_time_ms, 21);
  EXPECT_EQ(b.update_id, 5'123'107'839'020u);
  EXPECT_EQ(b.bid_price, 618'002);
  EXPECT_EQ(b.bid_qty, 2'507);
  EXPECT_EQ(b.ask_price, 618'003);
  EXPECT_EQ(b.ask_qty, 2'510);
  for (const char* crossed : {"1,2,3,4,61800.3,1,61800.3,1", "1,2,3,4,61800.4,1,61800.3,1"}) {
    replay::Result<BinanceBbo> r = parse_binance_bbo(crossed, BinanceScale{});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("crossed or locked"), std::string::npos);
  }
  replay::Result<BinanceBbo> r = parse_binance_bbo("1,2,3,4,61800.2,0,61800.3,1", BinanceScale{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bid_qty '0' must be positive"), std::string::npos);
}

class BinanceFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qx_binance_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& body) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << body;
    return path;
  }
  std::string write_gz(const std::string& name, const std::string& body) {
    std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, body.data(), static_cast<unsigned>(body.size())),
              static_cast<int>(body.size()));
    gzclose(f);
    return path;
  }

  fs::path dir_;
};

const std::string kTradesHeader = std::string(kBinanceTradesHeader) + "\n";
const std::string kBboHeader = std::string(kBinanceBboHeader) + "\n";

TEST_F(BinanceFiles, MergesByArrivalBboFirstOnTies) {
  std::string trades = write("trades.csv", kTradesHeader +
                                               "100,1,1,7,10.0,0.001,0,buy\n"
                                               "200,2,2,8,10.1,0.002,1,sell\n"
                                               "300,3,3,10,10.2,0.003,0,buy");  // no final \n
  std::string bbo = write_gz("bbo.csv.gz", kBboHeader +
                                               "50,0,0,1,9.9,1,10.0,1\n"
                                               "200,2,2,2,10.0,1,10.1,1\n"
                                               "400,4,4,3,10.1,1,10.2,1\n");
  replay::Result<BinanceReader> r = BinanceReader::open(trades, bbo, BinanceScale{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  BinanceReader& reader = r.value();
  std::vector<std::string> order;
  BinanceTick tick;
  for (;;) {
    replay::Result<bool> more = reader.next(tick);
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!more.value()) break;
    order.push_back(tick.kind == BinanceTickKind::kTrade
                        ? "t" + std::to_string(tick.trade.trade_id)
                        : "b" + std::to_string(tick.bbo.update_id));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "t7", "b2", "t8", "t10", "b3"}));
  const BinanceStats& s = reader.stats();
  EXPECT_EQ(s.trades, 3u);
  EXPECT_EQ(s.bbos, 3u);
  EXPECT_EQ(s.buy_aggressor, 2u);
  EXPECT_EQ(s.sell_aggressor, 1u);
  EXPECT_EQ(s.trade_id_gaps, 1u);  // 8 -> 10
  EXPECT_EQ(s.min_price, 100);
  EXPECT_EQ(s.max_price, 102);
}

TEST_F(BinanceFiles, ErrorsNameFileAndLine) {
  std::string good_bbo = write("bbo.csv", kBboHeader + "50,0,0,1,9.9,1,10.0,1\n");
  auto first_error = [&](const std::string& trades_body) -> std::string {
    std::string trades = write("t.csv", trades_body);
    replay::Result<BinanceReader> r = BinanceReader::open(trades, good_bbo, BinanceScale{});
    if (!r.ok()) return r.error().message;
    BinanceTick tick;
    for (;;) {
      replay::Result<bool> more = r.value().next(tick);
      if (!more.ok()) return more.error().message;
      if (!more.value()) return "";
    }
  };
  std::string t = (dir_ / "t.csv").string();
  EXPECT_EQ(first_error(""),
            t + ":0: empty file, expected the header " + std::string(kBinanceTradesHeader));
  EXPECT_NE(first_error("a,b\n").find(t + ":1: header 'a,b' is not"), std::string::npos);
  EXPECT_EQ(first_error(kTradesHeader + "100,1,1,7,10.0,0.001,0,buy\n100,1,1,8,10.05,1,0,buy\n"),
            t + ":3: price '10.05' has more than 1 decimals");
  EXPECT_EQ(first_error(kTradesHeader + "100,1,1,7,10.0,0.001,0,buy\n99,1,1,8,10.0,1,0,buy\n"),
            t + ":3: local_ts_ns 99 is before the previous line's 100");
  std::string missing = (dir_ / "missing.csv").string();
  replay::Result<BinanceReader> r = BinanceReader::open(missing, "", BinanceScale{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, missing + ": cannot open: No such file or directory");
  EXPECT_FALSE(BinanceReader::open("", "", BinanceScale{}).ok());
}

TEST_F(BinanceFiles, CorruptGzipIsAReadError) {
  std::string body = kBboHeader;
  for (int i = 0; i < 2000; ++i) body += std::to_string(50 + i) + ",0,0,1,9.9,1,10.0,1\n";
  std::string path = write_gz("bbo.csv.gz", body);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes.resize(bytes.size() / 2);  // cut the compressed stream in the middle
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  replay::Result<BinanceReader> r = BinanceReader::open("", path, BinanceScale{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  BinanceTick tick;
  std::string error;
  for (int i = 0; i < 3000; ++i) {
    replay::Result<bool> more = r.value().next(tick);
    if (!more.ok()) {
      error = more.error().message;
      break;
    }
    if (!more.value()) break;
  }
  EXPECT_NE(error.find(path + ":"), std::string::npos) << error;
}

// The shared BTCUSDT sample's README states these facts; the reader must reproduce them.
TEST(BinanceSample, MatchesThePublishedFacts) {
  fs::path dir = fs::path(QX_SOURCE_DIR) / ".." / "shared" / "data" / "ticks" /
                 "binance_usdm_btcusdt_2024-08-08";
  if (!fs::exists(dir / "trades.csv")) GTEST_SKIP() << "no shared data at " << dir;
  replay::Result<BinanceReader> r = BinanceReader::open(
      (dir / "trades.csv").string(), (dir / "bbo.csv.gz").string(), BinanceScale{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  BinanceTick tick;
  for (;;) {
    replay::Result<bool> more = r.value().next(tick);
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!more.value()) break;
  }
  const BinanceStats& s = r.value().stats();
  EXPECT_EQ(s.trades, 21'313u);
  EXPECT_EQ(s.bbos, 66'089u);
  EXPECT_EQ(s.trade_id_gaps, 0u);
  EXPECT_EQ(s.buy_aggressor, 9'616u);
  EXPECT_EQ(s.sell_aggressor, 11'697u);
  EXPECT_EQ(s.min_price, 615'903);
  EXPECT_EQ(s.max_price, 618'399);
}

}  // namespace
}  // namespace qx::sim
