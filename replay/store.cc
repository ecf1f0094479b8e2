// LMDB store of snapshots and CRoaring indexes (see store.h).
#include "replay/store.h"

#include <lmdb.h>

#include <cstring>
#include <roaring/roaring64map.hh>
#include <variant>

#include "core/engine.h"
#include "replay/codec.h"
#include "replay/crc32c.h"

namespace qx::replay {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMapBytes = std::size_t{1} << 40;  // address space only; sparse on disk

void put_be64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}
std::uint64_t get_be64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

Error lmdb_error(const char* what, int rc) {
  return Error{std::string("lmdb ") + what + ": " + mdb_strerror(rc)};
}

MDB_val val(const void* p, std::size_t n) {
  return MDB_val{n, const_cast<void*>(p)};
}

// A transaction that aborts unless committed.
class Txn {
 public:
  Txn(MDB_env* env, bool write) { rc_ = mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &t_); }
  ~Txn() {
    if (t_ != nullptr) mdb_txn_abort(t_);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  int rc() const { return rc_; }
  MDB_txn* get() { return t_; }
  int commit() {
    int rc = mdb_txn_commit(t_);
    t_ = nullptr;
    return rc;
  }

 private:
  MDB_txn* t_ = nullptr;
  int rc_ = 0;
};

std::array<std::uint8_t, 9> index_key(IndexKey k) {
  std::array<std::uint8_t, 9> out{};
  out[0] = static_cast<std::uint8_t>(k.kind);
  put_be64(out.data() + 1, k.id);
  return out;
}

Result<Roaring64Map> read_bitmap(const MDB_val& v) {
  if (v.mv_size < 8) return Error{"index bitmap too short"};
  if (v.mv_size > (std::size_t{1} << 36)) return Error{"index bitmap implausibly large"};
  // Copy into 8-byte aligned memory: the reader loads its header as a 64-bit word.
  std::vector<std::uint64_t> aligned((v.mv_size + 7) / 8);
  std::memcpy(aligned.data(), v.mv_data, v.mv_size);
  try {
    return Roaring64Map::readSafe(reinterpret_cast<const char*>(aligned.data()), v.mv_size);
  } catch (const std::exception& e) {
    return Error{std::string("corrupt index bitmap: ") + e.what()};
  }
}

std::vector<std::uint64_t> to_vector(const Roaring64Map& m) {
  std::vector<std::uint64_t> out(m.cardinality());
  m.toUint64Array(out.data());
  return out;
}

}  // namespace

struct Store::Env {
  MDB_env* env = nullptr;
  MDB_dbi snapshots{};
  MDB_dbi index{};
  MDB_dbi meta{};
  ~Env() {
    if (env != nullptr) mdb_env_close(env);
  }
};

// ---------------------------------------------------------------------------------------------
// IndexBuilder.

IndexBuilder::IndexBuilder() : entries_(new std::map<IndexKey, Roaring64Map>) {}
IndexBuilder::~IndexBuilder() {
  delete entries_;
}
IndexBuilder::IndexBuilder(IndexBuilder&& o) noexcept
    : entries_(std::exchange(o.entries_, nullptr)), last_seq_(o.last_seq_) {}
IndexBuilder& IndexBuilder::operator=(IndexBuilder&& o) noexcept {
  std::swap(entries_, o.entries_);
  last_seq_ = o.last_seq_;
  return *this;
}

std::size_t IndexBuilder::pending_keys() const {
  return entries_->size();
}

void IndexBuilder::touch(IndexKind kind, std::uint64_t id, std::uint64_t seq) {
  (*entries_)[IndexKey{kind, id}].add(seq);
}

void IndexBuilder::add(const core::Event& event, const core::EffectBuffer& effects) {
  using core::raw;
  std::uint64_t seq = raw(event.header.seq);
  last_seq_ = event.header.seq;
  std::int64_t bucket = event.header.timestamp_ns / kTimeBucketNs;
  touch(IndexKind::kTimeBucket, static_cast<std::uint64_t>(bucket), seq);
  auto account = [&](core::AccountId a) { touch(IndexKind::kAccount, raw(a), seq); };
  auto instrument = [&](core::InstrumentId i) { touch(IndexKind::kInstrument, raw(i), seq); };
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (requires { b.account; }) account(b.account);
        if constexpr (requires { b.instrument; }) instrument(b.instrument);
        if constexpr (requires { b.ref; }) {
          if (b.ref.order_id) touch(IndexKind::kOrder, raw(*b.ref.order_id), seq);
        }
        if constexpr (std::is_same_v<T, core::Settle>) {
          for (const auto& p : b.prices) instrument(p.instrument);
        }
      },
      event.body);
  for (const core::Effect& e : effects) {
    switch (e.kind) {
      case core::EffectKind::kOrderRejected:
      case core::EffectKind::kAdminRejected: break;
      case core::EffectKind::kTrade:
        account(e.account);
        account(e.counter_account);
        instrument(e.instrument);
        touch(IndexKind::kOrder, raw(e.order), seq);
        touch(IndexKind::kOrder, raw(e.counter_order), seq);
        break;
      case core::EffectKind::kOrderAccepted:
      case core::EffectKind::kOrderAmended:
      case core::EffectKind::kOrderCancelled:
      case core::EffectKind::kStopAccepted:
      case core::EffectKind::kStopTriggered:
        account(e.account);
        instrument(e.instrument);
        touch(IndexKind::kOrder, raw(e.order), seq);
        break;
      case core::EffectKind::kAccountCreated:
      case core::EffectKind::kDeposited:
      case core::EffectKind::kWithdrawn:
      case core::EffectKind::kAccountRiskSet:
      case core::EffectKind::kAccountSettled:
      case core::EffectKind::kLiquidationStarted: account(e.account); break;
      case core::EffectKind::kPositionDelivered:
        account(e.account);
        instrument(e.instrument);
        break;
      case core::EffectKind::kInsuranceCovered:
        account(e.account);
        account(e.counter_account);
        break;
      case core::EffectKind::kInstrumentCreated:
      case core::EffectKind::kInstrumentUpdated:
      case core::EffectKind::kInstrumentStatusChanged:
      case core::EffectKind::kSessionSet:
      case core::EffectKind::kAuctionUncrossed:
      case core::EffectKind::kPhaseChanged: instrument(e.instrument); break;
      case core::EffectKind::kUserCreated:
      case core::EffectKind::kRiskParamsSet:
      case core::EffectKind::kMarkedToMarket:
      case core::EffectKind::kCurrencySet:
      case core::EffectKind::kLimitsSet:
      case core::EffectKind::kTermStarted:
      case core::EffectKind::kSettlementDone: break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Store.

Store::Store(Store&& o) noexcept : env_(std::exchange(o.env_, nullptr)) {}
Store& Store::operator=(Store&& o) noexcept {
  std::swap(env_, o.env_);
  return *this;
}
Store::~Store() {
  delete env_;
}

Result<Store> Store::open(const fs::path& journal_dir) {
  fs::path path = journal_dir / "lmdb";
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Error{"create " + path.string() + ": " + ec.message()};
  Store s;
  s.env_ = new Env;
  int rc = mdb_env_create(&s.env_->env);
  if (rc != 0) return lmdb_error("env_create", rc);
  mdb_env_set_maxdbs(s.env_->env, 8);
  mdb_env_set_mapsize(s.env_->env, kMapBytes);
  rc = mdb_env_open(s.env_->env, path.c_str(), MDB_NOTLS, 0644);
  if (rc != 0) return lmdb_error(("open " + path.string()).c_str(), rc);
  Txn t(s.env_->env, true);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  for (auto [name, dbi] : {std::pair{"snapshots", &s.env_->snapshots},
                           std::pair{"index", &s.env_->index}, std::pair{"meta", &s.env_->meta}}) {
    rc = mdb_dbi_open(t.get(), name, MDB_CREATE, dbi);
    if (rc != 0) return lmdb_error("dbi_open", rc);
  }
  rc = t.commit();
  if (rc != 0) return lmdb_error("commit", rc);
  return s;
}

Status Store::put_snapshot(const core::Snapshot& snapshot) {
  auto bytes = encode_snapshot(snapshot);
  if (!bytes) return bytes.error();
  std::vector<std::uint8_t> value(12 + bytes.value().size());
  std::uint64_t hash = core::hash_snapshot(snapshot);
  put_be64(value.data() + 4, hash);
  std::memcpy(value.data() + 12, bytes.value().data(), bytes.value().size());
  std::uint32_t crc = crc32c(std::span(value).subspan(4));
  for (int i = 0; i < 4; ++i)
    value[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
  std::uint8_t key[8];
  put_be64(key, core::raw(snapshot.last_seq));
  Txn t(env_->env, true);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  MDB_val k = val(key, 8), v = val(value.data(), value.size());
  int rc = mdb_put(t.get(), env_->snapshots, &k, &v, 0);
  if (rc != 0) return lmdb_error("put snapshot", rc);
  rc = t.commit();
  if (rc != 0) return lmdb_error("commit snapshot", rc);
  return {};
}

Result<std::vector<core::Seq>> Store::snapshot_seqs() {
  Txn t(env_->env, false);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(t.get(), env_->snapshots, &c);
  if (rc != 0) return lmdb_error("cursor_open", rc);
  std::vector<core::Seq> out;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size == 8)
      out.push_back(core::Seq(get_be64(static_cast<const std::uint8_t*>(k.mv_data))));
  }
  mdb_cursor_close(c);
  return out;
}

Result<std::size_t> Store::forget_after(core::Seq seq) {
  std::size_t removed = 0;
  {
    Txn t(env_->env, true);
    if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(t.get(), env_->snapshots, &c);
    if (rc != 0) return lmdb_error("cursor_open", rc);
    std::uint8_t key[8];
    put_be64(key, core::raw(seq) + 1);
    MDB_val k = val(key, 8), v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      rc = mdb_cursor_del(c, 0);
      if (rc != 0) break;
      removed += 1;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error("delete snapshot", rc);
    rc = t.commit();
    if (rc != 0) return lmdb_error("commit", rc);
  }
  auto indexed = indexed_seq();
  if (!indexed) return indexed.error();
  if (indexed.value() > seq) {
    if (Status s = clear_indexes(); !s) return s.error();
  }
  return removed;
}

Result<SnapshotSearch> Store::latest_snapshot(std::optional<core::Seq> until) {
  Txn t(env_->env, false);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(t.get(), env_->snapshots, &c);
  if (rc != 0) return lmdb_error("cursor_open", rc);
  std::vector<std::string> skipped;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
    if (k.mv_size != 8) continue;
    std::uint64_t seq = get_be64(static_cast<const std::uint8_t*>(k.mv_data));
    if (until && seq > core::raw(*until)) continue;
    std::string at = "snapshot at seq " + std::to_string(seq) + ": ";
    std::span<const std::uint8_t> bytes(static_cast<const std::uint8_t*>(v.mv_data), v.mv_size);
    if (bytes.size() < 12) {
      skipped.push_back(at + "too short");
      continue;
    }
    std::uint32_t stored = 0;
    for (int i = 3; i >= 0; --i) stored = (stored << 8) | bytes[static_cast<std::size_t>(i)];
    if (crc32c(bytes.subspan(4)) != stored) {
      skipped.push_back(at + "CRC mismatch");
      continue;
    }
    auto snap = decode_snapshot(bytes.subspan(12));
    if (!snap) {
      skipped.push_back(at + snap.error().message);
      continue;
    }
    std::uint64_t hash = get_be64(bytes.data() + 4);
    if (snap.value().semantics_version != core::kSemanticsVersion ||
        core::raw(snap.value().last_seq) != seq || core::hash_snapshot(snap.value()) != hash) {
      skipped.push_back(at + "content does not match its recorded hash or version");
      continue;
    }
    // The final check: an engine restored from it must hash to the same state.
    if (core::Engine::restore(snap.value()).state_hash() != hash) {
      skipped.push_back(at + "restored engine hashes differently");
      continue;
    }
    mdb_cursor_close(c);
    return SnapshotSearch{LoadedSnapshot{std::move(snap.value()), hash}, std::move(skipped)};
  }
  mdb_cursor_close(c);
  return SnapshotSearch{std::nullopt, std::move(skipped)};
}

Status Store::flush(IndexBuilder& builder) {
  Txn t(env_->env, true);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  std::vector<char> buf;
  for (auto& [key, bitmap] : *builder.entries_) {
    auto kb = index_key(key);
    MDB_val k = val(kb.data(), kb.size()), v;
    int rc = mdb_get(t.get(), env_->index, &k, &v);
    if (rc == 0) {
      auto old = read_bitmap(v);
      if (!old) return old.error();
      bitmap |= old.value();
    } else if (rc != MDB_NOTFOUND) {
      return lmdb_error("get index", rc);
    }
    bitmap.runOptimize();
    buf.resize(bitmap.getSizeInBytes(true));
    bitmap.write(buf.data(), true);
    MDB_val nv = val(buf.data(), buf.size());
    rc = mdb_put(t.get(), env_->index, &k, &nv, 0);
    if (rc != 0) return lmdb_error("put index", rc);
  }
  std::uint8_t seq[8];
  put_be64(seq, core::raw(builder.last_seq_));
  MDB_val mk = val("indexed_seq", 11), mv = val(seq, 8);
  int rc = mdb_put(t.get(), env_->meta, &mk, &mv, 0);
  if (rc != 0) return lmdb_error("put meta", rc);
  rc = t.commit();
  if (rc != 0) return lmdb_error("commit index", rc);
  builder.entries_->clear();
  return {};
}

Status Store::clear_indexes() {
  Txn t(env_->env, true);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  int rc = mdb_drop(t.get(), env_->index, 0);
  if (rc != 0) return lmdb_error("drop index", rc);
  MDB_val mk = val("indexed_seq", 11);
  rc = mdb_del(t.get(), env_->meta, &mk, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error("del meta", rc);
  rc = t.commit();
  if (rc != 0) return lmdb_error("commit", rc);
  return {};
}

Result<core::Seq> Store::indexed_seq() {
  Txn t(env_->env, false);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  MDB_val mk = val("indexed_seq", 11), mv;
  int rc = mdb_get(t.get(), env_->meta, &mk, &mv);
  if (rc == MDB_NOTFOUND) return core::Seq{};
  if (rc != 0) return lmdb_error("get meta", rc);
  if (mv.mv_size != 8) return Error{"corrupt indexed_seq"};
  return core::Seq(get_be64(static_cast<const std::uint8_t*>(mv.mv_data)));
}

Result<std::vector<std::uint64_t>> Store::lookup(IndexKey key) {
  Txn t(env_->env, false);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  auto kb = index_key(key);
  MDB_val k = val(kb.data(), kb.size()), v;
  int rc = mdb_get(t.get(), env_->index, &k, &v);
  if (rc == MDB_NOTFOUND) return std::vector<std::uint64_t>{};
  if (rc != 0) return lmdb_error("get index", rc);
  auto m = read_bitmap(v);
  if (!m) return m.error();
  return to_vector(m.value());
}

Result<std::vector<std::uint64_t>> Store::lookup_time(std::int64_t from_ns, std::int64_t to_ns) {
  Txn t(env_->env, false);
  if (t.rc() != 0) return lmdb_error("txn_begin", t.rc());
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(t.get(), env_->index, &c);
  if (rc != 0) return lmdb_error("cursor_open", rc);
  Roaring64Map all;
  auto first = index_key(
      IndexKey{IndexKind::kTimeBucket,
               static_cast<std::uint64_t>(std::max<std::int64_t>(0, from_ns) / kTimeBucketNs)});
  std::uint64_t last_bucket =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_ns) / kTimeBucketNs);
  MDB_val k = val(first.data(), first.size()), v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    const auto* kp = static_cast<const std::uint8_t*>(k.mv_data);
    if (k.mv_size != 9 || kp[0] != static_cast<std::uint8_t>(IndexKind::kTimeBucket)) break;
    if (get_be64(kp + 1) > last_bucket) break;
    auto m = read_bitmap(v);
    if (!m) {
      mdb_cursor_close(c);
      return m.error();
    }
    all |= m.value();
  }
  mdb_cursor_close(c);
  return to_vector(all);
}

}  // namespace qx::replay
