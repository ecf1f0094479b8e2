// Prometheus metrics of the server (prometheus-cpp), exposed as text on GET /metrics.
//
//   qx_events_total                      events journaled and applied
//   qx_orders_total{result}              new orders accepted / rejected
//   qx_rejects_total{reason}             order and admin rejects by stable reason name
//   qx_trades_total                      trades
//   qx_order_ack_seconds                 order request received -> durable reply handed back
//   qx_journal_fsync_seconds             one group commit (write + fdatasync)
//   qx_sequencer_queue_depth             jobs waiting for the sequencer
//   qx_sequencer_queue_capacity          the queue's limit (queue_capacity; full answers 503)
//   qx_http_connections                  open HTTP connections
//   qx_http_requests_total{code}         HTTP replies by status class (2xx, 4xx, 5xx)
//   qx_tcp_connections                   open binary TCP connections
//   qx_tcp_disconnects_total{cause}      TCP sessions closed by the server: protocol,
//   slow_consumer,
//                                        idle, revoked, error
//   qx_ws_disconnects_total{cause}       WebSocket sessions closed by the server: slow_consumer,
//                                        revoked, error
//   qx_login_failures_total{reason}      failed or refused logins: bad_request, bad_credentials,
//                                        locked, busy, disabled, demo_user
//   qx_rejected_connections_total        connections closed at accept (max_connections_per_ip,
//                                        max_connections)
//   qx_rate_limited_total                requests refused with 429 (a user's rate_limit_per_s)
//   qx_snapshots_total{result}           periodic snapshots written: ok / failed
//
// Cluster mode (`qx serve --cluster`; in single-node mode they stay 0 and have no node series):
//   qx_cluster_nodes                     nodes in the cluster file (voters and learners; 0: single)
//   qx_cluster_leader                    1 while this node leads a term, else 0
//   qx_cluster_epoch                     the epoch of the term this node knows (leads or follows)
//   qx_cluster_elections_total           terms this node won
//   qx_cluster_role_changes_total        role changes (leader, follower, candidate)
//   qx_cluster_durable_seq               this node's journal is durable through this seq
//   qx_cluster_follower_connections      leader: followers connected to it
//   qx_cluster_follower_lag_events{node} leader: its durable seq minus the follower's
//   qx_cluster_replication_lag_seconds{node}
//                                        leader: a group durable here -> the follower's ack of it
//                                        arrives (the follower's fsync plus one round trip)
//
// Every method is safe from any thread (prometheus-cpp metrics are atomic).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/effects.h"
#include "core/events.h"

namespace qx::server {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void on_event(const core::Event& event, const core::EffectBuffer& effects);
  void order_ack_seconds(std::chrono::duration<double> d);
  void fsync_seconds(std::chrono::duration<double> d);
  void queue_depth(std::size_t n);
  void queue_capacity(std::size_t n);
  void connection_opened();
  void connection_closed();
  void http_reply(unsigned status);
  void tcp_connection_opened();
  void tcp_connection_closed();
  void tcp_disconnect(const char* cause);  // "protocol", "slow_consumer", "idle", ...
  void ws_disconnect(const char* cause);   // "slow_consumer", "revoked", "error"
  void login_failed(const char* reason);   // an error_name of server/login.h
  void connection_refused();
  void rate_limited();
  void snapshot_written(bool ok);
  void cluster_nodes(std::size_t n);
  void cluster_role(bool leading, std::uint64_t epoch);  // also counts a role change
  void cluster_term_won();
  void cluster_durable(std::uint64_t seq);
  void cluster_followers(std::size_t connected);
  void cluster_follower_lag(std::uint32_t node, std::uint64_t events);
  void cluster_replication_lag(std::uint32_t node, std::chrono::duration<double> d);
  // The Prometheus text exposition of every metric.
  [[nodiscard]] std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qx::server
