#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <string>
#include <string_view>
#include <variant>

namespace qx::server {

namespace p = prometheus;

struct Metrics::Impl {
  std::shared_ptr<p::Registry> registry = std::make_shared<p::Registry>();
  p::Counter& events = p::BuildCounter()
                           .Name("qx_events_total")
                           .Help("Events journaled and applied")
                           .Register(*registry)
                           .Add({});
  p::Family<p::Counter>& orders =
      p::BuildCounter().Name("qx_orders_total").Help("New orders by result").Register(*registry);
  p::Counter& accepted = orders.Add({{"result", "accepted"}});
  p::Counter& rejected = orders.Add({{"result", "rejected"}});
  p::Family<p::Counter>& rejects = p::BuildCounter()
                                       .Name("qx_rejects_total")
                                       .Help("Order and admin rejects by reason")
                                       .Register(*registry);
  p::Counter& trades =
      p::BuildCounter().Name("qx_trades_total").Help("Trades").Register(*registry).Add({});
  p::Histogram& ack =
      p::BuildHistogram()
          .Name("qx_order_ack_seconds")
          .Help("Order request received to durable reply")
          .Register(*registry)
          .Add({}, p::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0});
  p::Histogram& fsync =
      p::BuildHistogram()
          .Name("qx_journal_fsync_seconds")
          .Help("Journal group commit: write and fdatasync")
          .Register(*registry)
          .Add({}, p::Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                  0.005, 0.01, 0.025, 0.05, 0.1, 0.5});
  p::Gauge& queue = p::BuildGauge()
                        .Name("qx_sequencer_queue_depth")
                        .Help("Jobs waiting for the sequencer")
                        .Register(*registry)
                        .Add({});
  p::Gauge& queue_max = p::BuildGauge()
                            .Name("qx_sequencer_queue_capacity")
                            .Help("Jobs the sequencer queue holds at most")
                            .Register(*registry)
                            .Add({});
  p::Gauge& connections = p::BuildGauge()
                              .Name("qx_http_connections")
                              .Help("Open HTTP connections")
                              .Register(*registry)
                              .Add({});
  p::Family<p::Counter>& replies = p::BuildCounter()
                                       .Name("qx_http_requests_total")
                                       .Help("HTTP replies by status class")
                                       .Register(*registry);
  p::Gauge& tcp_connections = p::BuildGauge()
                                  .Name("qx_tcp_connections")
                                  .Help("Open binary TCP connections")
                                  .Register(*registry)
                                  .Add({});
  p::Family<p::Counter>& tcp_closes = p::BuildCounter()
                                          .Name("qx_tcp_disconnects_total")
                                          .Help("Binary TCP sessions the server closed, by cause")
                                          .Register(*registry);
  // Both causes exist from the start, so dashboards and alerts see zeros rather than nothing.
  p::Counter& tcp_protocol = tcp_closes.Add({{"cause", "protocol"}});
  p::Counter& tcp_slow = tcp_closes.Add({{"cause", "slow_consumer"}});
  p::Family<p::Counter>& ws_closes = p::BuildCounter()
                                         .Name("qx_ws_disconnects_total")
                                         .Help("WebSocket sessions the server closed, by cause")
                                         .Register(*registry);
  p::Family<p::Counter>& login_failures = p::BuildCounter()
                                              .Name("qx_login_failures_total")
                                              .Help("Failed or refused logins, by reason")
                                              .Register(*registry);
  p::Counter& refused =
      p::BuildCounter()
          .Name("qx_rejected_connections_total")
          .Help("Connections closed at accept: over max_connections_per_ip or max_connections")
          .Register(*registry)
          .Add({});
  p::Family<p::Counter>& snapshots = p::BuildCounter()
                                         .Name("qx_snapshots_total")
                                         .Help("Periodic snapshots written, by result")
                                         .Register(*registry);
  p::Counter& snapshots_ok = snapshots.Add({{"result", "ok"}});
  p::Counter& snapshots_failed = snapshots.Add({{"result", "failed"}});
  p::Counter& rate_limited = p::BuildCounter()
                                 .Name("qx_rate_limited_total")
                                 .Help("Requests refused with 429: over the user's rate limit")
                                 .Register(*registry)
                                 .Add({});

  p::Gauge& cluster_nodes = gauge("qx_cluster_nodes", "Nodes in the cluster file (0: single-node)");
  p::Gauge& cluster_leader = gauge("qx_cluster_leader", "1 while this node leads a term");
  p::Gauge& cluster_epoch = gauge("qx_cluster_epoch", "Epoch of the term this node knows");
  p::Counter& cluster_elections = p::BuildCounter()
                                      .Name("qx_cluster_elections_total")
                                      .Help("Terms this node won")
                                      .Register(*registry)
                                      .Add({});
  p::Counter& cluster_role_changes = p::BuildCounter()
                                         .Name("qx_cluster_role_changes_total")
                                         .Help("Role changes of this node")
                                         .Register(*registry)
                                         .Add({});
  p::Gauge& cluster_durable =
      gauge("qx_cluster_durable_seq", "This node's journal is durable through this seq");
  p::Gauge& cluster_followers =
      gauge("qx_cluster_follower_connections", "Leader: followers connected to it");
  p::Family<p::Gauge>& cluster_lag_events =
      p::BuildGauge()
          .Name("qx_cluster_follower_lag_events")
          .Help("Leader: its durable seq minus the follower's")
          .Register(*registry);
  p::Family<p::Histogram>& cluster_lag =
      p::BuildHistogram()
          .Name("qx_cluster_replication_lag_seconds")
          .Help("Leader: a group durable here to the follower's acknowledgement of it")
          .Register(*registry);

  p::Gauge& gauge(const char* name, const char* help) {
    return p::BuildGauge().Name(name).Help(help).Register(*registry).Add({});
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::on_event(const core::Event& event, const core::EffectBuffer& effects) {
  impl_->events.Increment();
  const bool new_order = std::holds_alternative<core::NewOrder>(event.body);
  for (const core::Effect& e : effects) {
    switch (e.kind) {
      case core::EffectKind::kOrderAccepted:
        if (new_order) impl_->accepted.Increment();
        break;
      case core::EffectKind::kOrderRejected:
      case core::EffectKind::kAdminRejected:
        if (new_order) impl_->rejected.Increment();
        impl_->rejects.Add({{"reason", core::to_string(static_cast<core::RejectReason>(e.reason))}})
            .Increment();
        break;
      case core::EffectKind::kTrade: impl_->trades.Increment(); break;
      default: break;
    }
  }
}

void Metrics::order_ack_seconds(std::chrono::duration<double> d) {
  impl_->ack.Observe(d.count());
}
void Metrics::fsync_seconds(std::chrono::duration<double> d) {
  impl_->fsync.Observe(d.count());
}
void Metrics::queue_depth(std::size_t n) {
  impl_->queue.Set(static_cast<double>(n));
}
void Metrics::queue_capacity(std::size_t n) {
  impl_->queue_max.Set(static_cast<double>(n));
}
void Metrics::connection_opened() {
  impl_->connections.Increment();
}
void Metrics::connection_closed() {
  impl_->connections.Decrement();
}
void Metrics::http_reply(unsigned status) {
  const char* cls = status < 300 ? "2xx" : status < 400 ? "3xx" : status < 500 ? "4xx" : "5xx";
  impl_->replies.Add({{"code", cls}}).Increment();
}

void Metrics::tcp_connection_opened() {
  impl_->tcp_connections.Increment();
}
void Metrics::tcp_connection_closed() {
  impl_->tcp_connections.Decrement();
}
void Metrics::tcp_disconnect(const char* cause) {
  impl_->tcp_closes.Add({{"cause", cause}}).Increment();
}
void Metrics::ws_disconnect(const char* cause) {
  impl_->ws_closes.Add({{"cause", cause}}).Increment();
}
void Metrics::login_failed(const char* reason) {
  impl_->login_failures.Add({{"reason", reason}}).Increment();
}
void Metrics::connection_refused() {
  impl_->refused.Increment();
}
void Metrics::rate_limited() {
  impl_->rate_limited.Increment();
}

void Metrics::snapshot_written(bool ok) {
  (ok ? impl_->snapshots_ok : impl_->snapshots_failed).Increment();
}

void Metrics::cluster_nodes(std::size_t n) {
  impl_->cluster_nodes.Set(static_cast<double>(n));
}
void Metrics::cluster_role(bool leading, std::uint64_t epoch) {
  impl_->cluster_leader.Set(leading ? 1 : 0);
  impl_->cluster_epoch.Set(static_cast<double>(epoch));
  impl_->cluster_role_changes.Increment();
}
void Metrics::cluster_term_won() {
  impl_->cluster_elections.Increment();
}
void Metrics::cluster_durable(std::uint64_t seq) {
  impl_->cluster_durable.Set(static_cast<double>(seq));
}
void Metrics::cluster_followers(std::size_t connected) {
  impl_->cluster_followers.Set(static_cast<double>(connected));
}
void Metrics::cluster_follower_lag(std::uint32_t node, std::uint64_t events) {
  impl_->cluster_lag_events.Add({{"node", std::to_string(node)}}).Set(static_cast<double>(events));
}
void Metrics::cluster_replication_lag(std::uint32_t node, std::chrono::duration<double> d) {
  impl_->cluster_lag
      .Add({{"node", std::to_string(node)}},
           p::Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0})
      .Observe(d.count());
}

std::string Metrics::text() const {
  return p::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace qx::server
