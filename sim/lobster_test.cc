// Tests of sim/lobster.h: decimal parsing (numbers, times), message and orderbook rows (good and
// malformed), the reader's file and line errors, the translation of each message type and quirk
// on a small hand-made level-2 day, a corrupted reference row being caught, New York dates, and
// the full comparison on both shared AMZN samples (skipped when ../shared/data is absent).
#include "sim/lobster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "core/engine.h"

namespace qx::sim {
namespace {

namespace fs = std::filesystem;
using core::Direction;

constexpr std::int64_t kNs = 1'000'000'000;

// ---- numbers and times ----

TEST(LobsterParse, Integers) {
  EXPECT_EQ(parse_lobster_int("0").value(), 0);
  EXPECT_EQ(parse_lobster_int("2238200").value(), 2'238'200);
  EXPECT_EQ(parse_lobster_int("-9999999999").value(), -9'999'999'999);
  EXPECT_EQ(parse_lobster_int("9223372036854775807").value(), INT64_MAX);
  for (const char* bad : {"", "-", "+1", " 1", "1 ", "1a", "1.0", "0x10", "--1",
                          "9223372036854775808", "99999999999999999999"}) {
    Result<std::int64_t> r = parse_lobster_int(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("is not an integer"), std::string::npos);
  }
}

TEST(LobsterParse, TimesAreExactNanoseconds) {
  EXPECT_EQ(parse_lobster_time_ns("34200.18960767").value(), 34'200'189'607'670);
  EXPECT_EQ(parse_lobster_time_ns("34200.017459617").value(), 34'200'017'459'617);
  EXPECT_EQ(parse_lobster_time_ns("34200").value(), 34'200 * kNs);
  EXPECT_EQ(parse_lobster_time_ns("57599.9").value(), 57'599'900'000'000);
  EXPECT_EQ(parse_lobster_time_ns("0.000000001").value(), 1);
  // A float artefact of the 5-level sample (line 67823): digits past ns are dropped.
  EXPECT_EQ(parse_lobster_time_ns("43002.632812672004").value(), 43'002'632'812'672);
  for (const char* bad : {"", ".5", "34200.", "-1.5", "1e5", "34200.1x", "34200..1", "3420 0.1",
                          "12345678.0", "+34200.1"}) {
    Result<std::int64_t> r = parse_lobster_time_ns(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("is not seconds after midnight"), std::string::npos);
  }
}

// ---- message rows ----

TEST(LobsterParse, GoodMessages) {
  LobsterMessage m = parse_lobster_message("34200.18960767,1,11885113,21,2238100,1").value();
  EXPECT_EQ(m.time_ns, 34'200'189'607'670);
  EXPECT_EQ(m.type, LobsterType::kSubmit);
  EXPECT_EQ(m.order_id, 11'885'113u);
  EXPECT_EQ(m.size, 21);
  EXPECT_EQ(m.price, 2'238'100);
  EXPECT_EQ(m.direction, Direction::kBuy);

  m = parse_lobster_message("34200.017459617,5,0,1,2238200,-1\r").value();  // CRLF tolerated
  EXPECT_EQ(m.type, LobsterType::kExecuteHidden);
  EXPECT_EQ(m.order_id, 0u);
  EXPECT_EQ(m.direction, Direction::kSell);

  m = parse_lobster_message("36023,7,0,0,-1,-1").value();  // halt indicator (vendor readme)
  EXPECT_EQ(m.type, LobsterType::kHalt);
  EXPECT_EQ(m.price, -1);
}

TEST(LobsterParse, MalformedMessagesSayWhy) {
  struct Case {
    const char* line;
    const char* why;
  };
  for (const Case& c : {
           Case{"34200.1,1,5,21,2238100", "5 columns, expected 6"},
           Case{"34200.1,1,5,21,2238100,1,7", "7 columns, expected 6"},
           Case{"", "1 columns, expected 6"},
           Case{"34200.1,8,5,21,2238100,1", "type '8' is not 1..7"},
           Case{"34200.1,0,5,21,2238100,1", "type '0' is not 1..7"},
           Case{"34200.1,1,5,21,2238100,0", "direction '0' is not 1 or -1"},
           Case{"34200.1,1,5,0,2238100,1", "size '0' must be positive"},
           Case{"34200.1,3,5,-4,2238100,1", "size '-4' must be positive"},
           Case{"34200.1,1,5,21,0,1", "price '0' must be positive"},
           Case{"34200.1,1,0,21,2238100,1", "order id '0' must not be 0"},
           Case{"34200.1,1,-5,21,2238100,1", "order id '-5' is negative"},
           Case{"34200.1,1,5,21,223.81,1", "price '223.81' is not an integer"},
           Case{"34200.1,1,5,,2238100,1", "size '' is not an integer"},
           Case{"9:30:00,1,5,21,2238100,1", "time '9:30:00' is not seconds"},
       }) {
    Result<LobsterMessage> r = parse_lobster_message(c.line);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_NE(r.error().message.find(c.why), std::string::npos)
        << c.line << " -> " << r.error().message;
  }
}

// ---- orderbook rows ----

TEST(LobsterParse, GoodRows) {
  LobsterRow row;
  ASSERT_TRUE(parse_lobster_row("2239500,100,2231800,100", 1, row).ok());
  EXPECT_EQ(row.asks, (std::vector<LobsterLevel>{{2'239'500, 100}}));
  EXPECT_EQ(row.bids, (std::vector<LobsterLevel>{{2'231'800, 100}}));

  ASSERT_TRUE(parse_lobster_row("101,5,100,7,103,1,99,2", 2, row).ok());  // reuses storage
  EXPECT_EQ(row.asks, (std::vector<LobsterLevel>{{101, 5}, {103, 1}}));
  EXPECT_EQ(row.bids, (std::vector<LobsterLevel>{{100, 7}, {99, 2}}));

  // Padding for empty levels, on either side, down to an empty side.
  ASSERT_TRUE(parse_lobster_row("101,5,-9999999999,0,9999999999,0,-9999999999,0", 2, row).ok());
  EXPECT_EQ(row.asks, (std::vector<LobsterLevel>{{101, 5}}));
  EXPECT_TRUE(row.bids.empty());
}

TEST(LobsterParse, MalformedRowsSayWhy) {
  struct Case {
    const char* line;
    std::size_t levels;
    const char* why;
  };
  for (const Case& c : {
           Case{"101,5,100", 1, "3 columns, expected 4"},
           Case{"101,5,100,7", 2, "4 columns, expected 8"},
           Case{"101,5,100,x", 1, "bid level 1: size 'x' is not a count"},
           Case{"101,5,1e2,7", 1, "bid level 1: price '1e2' is not an integer"},
           Case{"101,-5,100,7", 1, "ask level 1: size '-5' is not a count"},
           Case{"101,0,100,7", 1, "ask level 1: price and size must be positive"},
           Case{"9999999999,3,100,7", 1, "ask level 1: an empty level with size 3"},
           Case{"9999999999,0,100,7,103,1,99,2", 2, "ask level 2: a level after an empty one"},
           Case{"101,5,100,7,101,1,99,2", 2, "ask level 2: price 101 is not worse"},
           Case{"101,5,100,7,103,1,100,2", 2, "bid level 2: price 100 is not worse"},
           Case{"101,5,100,7,", 1, "5 columns"},
       }) {
    LobsterRow row;
    Status s = parse_lobster_row(c.line, c.levels, row);
    ASSERT_FALSE(s.ok()) << c.line;
    EXPECT_NE(s.error().message.find(c.why), std::string::npos)
        << c.line << " -> " << s.error().message;
  }
}

// ---- files ----

class LobsterFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qx_lobster_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::vector<std::string>& lines) {
    std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    for (const std::string& l : lines) out << l << '\n';
    return path;
  }

  fs::path dir_;
};

TEST_F(LobsterFiles, ReaderNamesFileAndLine) {
  std::string m = write("m.csv", {"34200.1,1,5,21,2238100,1", "34200.2,3,5,21,2238100,1",
                                  "34200.3,9,5,21,2238100,1"});
  std::string b = write(
      "b.csv", {"2239500,100,2238100,21", "2239500,100,2231800,100", "2239500,100,2231800,100"});
  Result<LobsterReader> r = LobsterReader::open(m, b, 0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().levels(), 1u);
  LobsterMessage msg;
  LobsterRow row;
  EXPECT_TRUE(r.value().next(msg, row).value());
  EXPECT_TRUE(r.value().next(msg, row).value());
  Result<bool> third = r.value().next(msg, row);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().message, m + ":3: type '9' is not 1..7");
}

TEST_F(LobsterFiles, ReaderRejectsBadFiles) {
  std::string m2 = write("m2.csv", {"34200.1,1,5,21,2238100,1", "34200.2,3,5,21,2238100,1"});
  std::string b1 = write("b1.csv", {"2239500,100,2238100,21"});
  std::string b2 = write("b2.csv", {"2239500,100,2238100,21", "2239500,100,2231800,-100"});
  std::string back = write("back.csv", {"34200.2,1,5,21,2238100,1", "34200.1,3,5,21,2238100,1"});
  LobsterMessage msg;
  LobsterRow row;
  auto error_of = [&](const std::string& m, const std::string& b, std::size_t levels) {
    Result<LobsterReader> r = LobsterReader::open(m, b, levels);
    if (!r.ok()) return r.error().message;
    for (;;) {
      Result<bool> next = r.value().next(msg, row);
      if (!next.ok()) return next.error().message;
      if (!next.value()) return std::string("no error");
    }
  };
  EXPECT_EQ(error_of(m2, b1, 0), b1 + ":2: ends here, but the message file has more rows");
  EXPECT_EQ(error_of(m2, b2, 0), b2 + ":2: bid level 1: size '-100' is not a count");
  EXPECT_EQ(error_of(back, b1, 0).find(b1 + ":2: ends here"), 0u);
  std::string b2ok = write("b2ok.csv", {"2239500,100,2238100,21", "2239500,100,2231800,100"});
  EXPECT_EQ(error_of(back, b2ok, 0),
            back + ":2: time goes backwards (34200100000000 ns after 34200200000000 ns)");
  EXPECT_EQ(error_of(m2, b2ok, 5), b2ok + ":1: 4 columns, but 5 levels need 20");
  EXPECT_NE(error_of(m2, (dir_ / "missing.csv").string(), 0).find("missing.csv: cannot open"),
            std::string::npos);
}

// A hand-made level-2 day that exercises every message type and quirk (the comments give the
// true book; `levels_*` counts follow from them).
const std::vector<std::string> kDayMessages = {
    "34200.000000001,5,0,10,10050,1",  // 1 hidden execution: no change
    "34200.5,1,11,20,10000,1",         // 2 submit: bid 10000 200 -> 220
    "34200.5,2,11,5,10000,1",          // 3 partial cancel of 11: 215
    "34201,4,999,100,10100,-1",        // 4 execution of an unseen order: ask 10100 gone,
                                       //   10300 x 70 enters the window (seeded)
    "34201.25,4,11,15,10000,1",        // 5 11 fully executed: bid 10000 = 200
    "34201.25,3,888,200,10000,1",      // 6 unseen delete: 10000 gone, 9800 x 35 enters
    "34202,1,12,10,10250,-1",          // 7 ask 10250: 10300 leaves the window
    "34202.1,3,12,10,10250,-1",        // 8 10300 is back with 90 (grew unseen): seeded
    "34202.2,1,14,40,10250,-1",        // 9
    "34202.3,1,15,5,10150,-1",         // 10 10250 leaves the window
    "34202.4,3,15,5,10150,-1",         // 11 10250 back with 45: 14 lost 15, 77 added 20
    "34202.5,3,14,25,10250,-1",        // 12 delete of 14 with its true size 25 (shadow 40)
    "34202.6,3,77,20,10250,-1",        // 13 unseen 77: 10250 gone, 10300 back unchanged
    "34203,1,16,10,9950,1",            // 14 bid 9950: 9800 leaves the window
    "34203.1,3,16,10,9950,1",          // 15 9800 gone unseen (dropped), 9700 x 5 enters
    "34203.2,7,0,0,-1,-1",             // 16 halt indicator: no change
    "34203.3,3,555,30,9900,1",         // 17 bid 9900 gone: one bid level left
    "34203.4,1,17,8,9600,1",           // 18 the side had under 2 levels: all visible
};
const std::vector<std::string> kDayBook = {
    "10100,100,10000,200,10200,50,9900,30",    // 1
    "10100,100,10000,220,10200,50,9900,30",    // 2
    "10100,100,10000,215,10200,50,9900,30",    // 3
    "10200,50,10000,215,10300,70,9900,30",     // 4
    "10200,50,10000,200,10300,70,9900,30",     // 5
    "10200,50,9900,30,10300,70,9800,35",       // 6
    "10200,50,9900,30,10250,10,9800,35",       // 7
    "10200,50,9900,30,10300,90,9800,35",       // 8
    "10200,50,9900,30,10250,40,9800,35",       // 9
    "10150,5,9900,30,10200,50,9800,35",        // 10
    "10200,50,9900,30,10250,45,9800,35",       // 11
    "10200,50,9900,30,10250,20,9800,35",       // 12
    "10200,50,9900,30,10300,90,9800,35",       // 13
    "10200,50,9950,10,10300,90,9900,30",       // 14
    "10200,50,9900,30,10300,90,9700,5",        // 15
    "10200,50,9900,30,10300,90,9700,5",        // 16
    "10200,50,9700,5,10300,90,-9999999999,0",  // 17
    "10200,50,9700,5,10300,90,9600,8",         // 18
};

LobsterConfig day_config() {
  LobsterConfig c;
  c.instrument_code = "TEST";
  c.day_start_ns = *new_york_midnight_ns(2012, 6, 21);
  c.levels = 2;
  c.tick_units = 50;  // half a cent, so that the day can use prices like 10250
  return c;
}

TEST_F(LobsterFiles, HandMadeDayMatchesEveryRow) {
  std::string m = write("m.csv", kDayMessages);
  std::string b = write("b.csv", kDayBook);
  Result<LobsterCheckReport> r = check_lobster(m, b, day_config());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const LobsterCheckReport& rep = r.value();
  EXPECT_EQ(rep.rows_compared, kDayMessages.size());
  EXPECT_EQ(rep.rows_mismatched, 0u) << "first at line " << rep.first_mismatch_line;
  EXPECT_EQ(rep.engine_rejects, 0u) << rep.first_engine_problem;
  EXPECT_EQ(rep.engine_trades, 0u);
  const LobsterStats& s = rep.stats;
  EXPECT_EQ(s.messages, 18u);
  EXPECT_EQ(s.by_type[1], 6u);
  EXPECT_EQ(s.by_type[2], 1u);
  EXPECT_EQ(s.by_type[3], 7u);
  EXPECT_EQ(s.by_type[4], 2u);
  EXPECT_EQ(s.by_type[5], 1u);
  EXPECT_EQ(s.by_type[7], 1u);
  EXPECT_EQ(s.levels_seeded_at_start, 4u);
  EXPECT_EQ(s.levels_entered, 6u);  // rows 4, 6, 8, 11, 13, 15
  EXPECT_EQ(s.levels_seeded, 5u);   // all but row 13's (10300 came back as it left)
  EXPECT_EQ(s.levels_dropped, 1u);  // 9800 at row 15
  EXPECT_EQ(s.unknown_order_messages, 4u);
  EXPECT_EQ(s.size_disagreements, 1u);
  EXPECT_EQ(s.shortfall_lots, 0u);
}

// Which engine events each message becomes.
TEST(LobsterBookEvents, MessagesMapToEngineEvents) {
  LobsterBook book(day_config());
  std::vector<std::vector<core::Event>> per_message;
  for (std::size_t i = 0; i < kDayMessages.size(); ++i) {
    LobsterRow row;
    ASSERT_TRUE(parse_lobster_row(kDayBook[i], 2, row).ok());
    std::vector<core::Event> out;
    ASSERT_TRUE(book.step(parse_lobster_message(kDayMessages[i]).value(), row, out).ok());
    per_message.push_back(std::move(out));
  }
  // Message 1: setup (currency, instrument, user, 2 accounts, 2 deposits) and 4 seeded levels.
  ASSERT_EQ(per_message[0].size(), 11u);
  const auto& currency = std::get<core::SetCurrency>(per_message[0][0].body);
  EXPECT_EQ(currency.code, "USD");
  EXPECT_EQ(currency.decimals, 4u);
  EXPECT_TRUE(std::holds_alternative<core::CreateInstrument>(per_message[0][1].body));
  const auto& ins = std::get<core::CreateInstrument>(per_message[0][1].body);
  EXPECT_EQ(ins.params.price_tick_e8, 500'000);  // 0.005 USD
  EXPECT_EQ(ins.pre_settlement, core::PriceTicks(200));
  for (std::size_t i = 7; i < 11; ++i) {
    const auto& o = std::get<core::NewOrder>(per_message[0][i].body);
    EXPECT_GE(core::raw(o.client_order_id), LobsterBook::kAnonymousIdBase);
  }
  std::uint64_t seq = 0;
  for (const auto& events : per_message) {
    for (const core::Event& e : events) {
      EXPECT_EQ(core::raw(e.header.seq), ++seq);
      EXPECT_GE(e.header.timestamp_ns, day_config().day_start_ns + 34'200 * kNs);
    }
  }
  // Submit: a GTC limit order, client id = LOBSTER id, price in ticks, in the bid account.
  ASSERT_EQ(per_message[1].size(), 1u);
  const auto& o = std::get<core::NewOrder>(per_message[1][0].body);
  EXPECT_EQ(core::raw(o.client_order_id), 11u);
  EXPECT_EQ(o.price, core::PriceTicks(200));
  EXPECT_EQ(o.volume, core::Lots(20));
  EXPECT_EQ(o.time_condition, core::TimeCondition::kGtc);
  EXPECT_EQ(o.account, LobsterBook::account_of(Direction::kBuy));
  // Partial cancel: amend down at the same price.
  const auto& a = std::get<core::AmendOrder>(per_message[2].at(0).body);
  EXPECT_EQ(core::raw(a.ref.client_order_id), 11u);
  EXPECT_EQ(a.new_price, core::PriceTicks(200));
  EXPECT_EQ(a.new_volume_left, core::Lots(15));
  // Unseen execution: cancels the seeded order, then seeds 10300 (entered the window).
  ASSERT_EQ(per_message[3].size(), 2u);
  EXPECT_TRUE(std::holds_alternative<core::CancelOrder>(per_message[3][0].body));
  EXPECT_EQ(std::get<core::NewOrder>(per_message[3][1].body).price, core::PriceTicks(206));
  // Full execution of a known order: a cancel.
  ASSERT_EQ(per_message[4].size(), 1u);
  EXPECT_EQ(core::raw(std::get<core::CancelOrder>(per_message[4][0].body).ref.client_order_id),
            11u);
  // A delete smaller than the order holds: the order is amended to its excess and stays.
  ASSERT_EQ(per_message[11].size(), 1u);
  const auto& excess = std::get<core::AmendOrder>(per_message[11][0].body);
  EXPECT_EQ(core::raw(excess.ref.client_order_id), 14u);
  EXPECT_EQ(excess.new_volume_left, core::Lots(15));
  // Hidden executions and halts: nothing.
  EXPECT_TRUE(per_message[15].empty());
}

// The initial book is row 1 with message 1 undone: a submit is taken out of its level, a
// delete is put back (here as a level the row no longer shows).
TEST_F(LobsterFiles, FirstMessageIsUndoneToSeedTheBook) {
  LobsterConfig c = day_config();
  c.levels = 1;
  struct Case {
    std::vector<std::string> messages, book;
    std::uint64_t seeded_at_start, entered, seeded;
  };
  std::vector<Case> cases = {
      {{"34200.1,1,1,10,10000,1", "34200.2,3,1,10,10000,1", "34200.3,3,9,50,10000,1"},
       {"10100,100,10000,60", "10100,100,10000,50", "10100,100,9900,7"},
       2,
       1,
       1},
      {{"34200.1,3,5,50,10000,1", "34200.2,1,6,3,10050,-1"},
       {"10100,100,9900,20", "10050,3,9900,20"},
       3,
       1,
       0},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::string m = write("m" + std::to_string(i) + ".csv", cases[i].messages);
    std::string b = write("b" + std::to_string(i) + ".csv", cases[i].book);
    Result<LobsterCheckReport> r = check_lobster(m, b, c);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value().rows_compared, cases[i].messages.size());
    EXPECT_EQ(r.value().rows_mismatched, 0u) << i;
    EXPECT_EQ(r.value().engine_rejects + r.value().engine_trades, 0u) << i;
    EXPECT_EQ(r.value().stats.levels_seeded_at_start, cases[i].seeded_at_start) << i;
    EXPECT_EQ(r.value().stats.levels_entered, cases[i].entered) << i;
    EXPECT_EQ(r.value().stats.levels_seeded, cases[i].seeded) << i;
  }
}

TEST_F(LobsterFiles, CorruptReferenceRowIsCaught) {
  std::vector<std::string> book = kDayBook;
  book[2] = "10100,100,10000,216,10200,50,9900,30";  // the engine will hold 215
  std::string m = write("m.csv", kDayMessages);
  std::string b = write("b.csv", book);
  Result<LobsterCheckReport> r = check_lobster(m, b, day_config());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().rows_mismatched, 1u);
  EXPECT_EQ(r.value().first_mismatch_line, 3u);
  const LobsterMismatch& d = *r.value().first_mismatch;
  EXPECT_EQ(d.direction, Direction::kBuy);
  EXPECT_EQ(d.level, 0u);
  EXPECT_EQ(d.expected, (LobsterLevel{10'000, 216}));
  EXPECT_EQ(d.actual, (LobsterLevel{10'000, 215}));
}

TEST_F(LobsterFiles, InconsistentDataIsAnErrorWithItsLine) {
  std::vector<std::string> msgs = kDayMessages;
  msgs[2] = "34200.5,2,11,5,10100,1";  // order 11 rests at 10000
  std::string m = write("m.csv", msgs);
  std::string b = write("b.csv", kDayBook);
  Result<LobsterCheckReport> r = check_lobster(m, b, day_config());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            m + ":3: order 11 rests as BUY at 10000, the message says BUY at 10100");

  msgs = kDayMessages;
  msgs[1] = "34200.5,1,11,20,10001,1";  // not a whole tick
  m = write("m2.csv", msgs);
  r = check_lobster(m, b, day_config());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, m + ":2: price 10001 is not a positive multiple of the tick (50)");
}

// ---- dates ----

TEST(LobsterDates, NewYorkMidnight) {
  constexpr std::int64_t kS = kNs;
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11'017);
  EXPECT_EQ(*new_york_midnight_ns(2012, 6, 21), 1'340'251'200 * kS);  // EDT: 04:00 UTC
  EXPECT_EQ(*new_york_midnight_ns(2012, 1, 3), 1'325'566'800 * kS);   // EST: 05:00 UTC
  EXPECT_EQ(*new_york_midnight_ns(2012, 3, 11), 1'331'442'000 * kS);  // DST starts at 2:00
  EXPECT_EQ(*new_york_midnight_ns(2012, 11, 4), 1'352'001'600 * kS);  // DST ends at 2:00
  EXPECT_TRUE(days_from_civil(2012, 2, 29).has_value());
  EXPECT_FALSE(days_from_civil(2013, 2, 29).has_value());
  EXPECT_FALSE(days_from_civil(2012, 4, 31).has_value());
  EXPECT_FALSE(days_from_civil(2012, 13, 1).has_value());
  EXPECT_EQ(parse_trading_date("2012-06-21").value(), 1'340'251'200 * kS);
  EXPECT_FALSE(parse_trading_date("2012-6-21").ok());
  EXPECT_FALSE(parse_trading_date("2012-02-30").ok());
}

// ---- the shared AMZN samples ----

struct Sample {
  std::size_t levels;
  std::uint64_t rows;
};

void check_sample(const Sample& s) {
  std::string dir = std::string(QX_SOURCE_DIR) + "/../shared/data/lobster/AMZN_2012-06-21_" +
                    std::to_string(s.levels) + "/AMZN_2012-06-21_34200000_57600000_";
  std::string m = dir + "message_" + std::to_string(s.levels) + ".csv";
  std::string b = dir + "orderbook_" + std::to_string(s.levels) + ".csv";
  if (!fs::exists(m) || !fs::exists(b)) {
    GTEST_SKIP() << "LOBSTER sample not found at " << m
                 << " (the shared data lives beside the checkout, in ../shared/data)";
  }
  LobsterConfig c;
  c.day_start_ns = parse_trading_date("2012-06-21").value();
  c.levels = s.levels;
  Result<LobsterCheckReport> r = check_lobster(m, b, c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const LobsterCheckReport& rep = r.value();
  EXPECT_EQ(rep.rows_compared, s.rows);
  EXPECT_EQ(rep.rows_mismatched, 0u) << "first at line " << rep.first_mismatch_line;
  EXPECT_EQ(rep.engine_rejects, 0u) << rep.first_engine_problem;
  EXPECT_EQ(rep.engine_trades, 0u) << rep.first_engine_problem;
  EXPECT_EQ(rep.stats.shortfall_lots, 0u);
  EXPECT_EQ(rep.stats.by_type[4], 8'974u);  // the readme's counts, equal across levels
  EXPECT_EQ(rep.stats.by_type[5], 2'445u);
}

TEST(LobsterSample, Amzn1LevelMatchesEveryRow) {
  check_sample(Sample{1, 57'515});
}

TEST(LobsterSample, Amzn5LevelsMatchEveryRow) {
  check_sample(Sample{5, 155'935});
}

}  // namespace
}  // namespace qx::sim
