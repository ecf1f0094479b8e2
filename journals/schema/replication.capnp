# The replication stream between the nodes of a cluster (docs/cluster.md): the peer messages of
# cluster/node.h, the leader's divergence check, and the raw journal records a `records` message
# names. cluster/wire.h encodes and decodes these; nothing else should build them by hand.
#
# Framing: the binary TCP protocol's (wire.capnp): each message on the stream is a 4-byte
# little-endian length N followed by N bytes of one PeerMessage in the standard stream encoding
# (segment table, then segments), unpacked. The stream runs both ways on one connection the
# follower opens (Hello, ProbeReply, Acked and Refuse from the follower; the rest from the
# leader).
#
# Limits: N is at most cluster::kPeerFrameMax (64 MiB). A leader batches records so that their
# bytes total at most cluster::kPeerRecordsBytesMax (48 MiB), which with the list's pointers
# always fits; one record is at most 56 + 16 MiB bytes (replay::kRecordPayloadBytesMax), so any
# single record fits. A frame that is too large or does not decode, an unknown body, a chain that
# is not 32 bytes, records that are not whole journal records, or records beside anything but a
# `records` body is a protocol error: the receiver closes the connection and acts on nothing in
# that frame.
#
# Units: sequence numbers are the journal's (UInt64, the first event is 1), epochs are etcd mod
# revisions of the leadership key (UInt64), node ids those of the cluster file (UInt32, 1..1024).
#
# Fields are only appended with new ordinals; an ordinal is never reused. A node that receives a
# body it does not know refuses the frame, so a new kind of message may be sent only once every
# node knows it.
@0xc2f88859d9289165;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("qx::cluster::schema");

struct PeerMessage {
  body :union {
    none @0 :Void;              # a protocol error (what an all-zero message reads as)
    hello @1 :Hello;
    heartbeat @2 :Heartbeat;
    probe @3 :Probe;
    probeReply @4 :ProbeReply;
    truncate @5 :Truncate;
    records @6 :Records;
    acked @7 :Acked;
    refuse @8 :Refuse;
    stateCheck @9 :StateCheck;
    snapshotChunk @11 :SnapshotChunk;
    installSnapshot @12 :InstallSnapshot;
  }
  # The records a `records` body names, first..last in order, each exactly as on disk
  # (replay/journal.h: a 56-byte header, the payload, zero padding to a multiple of 8 bytes).
  # Empty or absent with every other body.
  rawRecords @10 :List(Data);
}

# Follower to leader, on connecting and at every new epoch: what its journal holds.
struct Hello {
  from @0 :UInt32;         # node id
  fenced @1 :UInt64;       # the epoch it has fenced (takes no record of this epoch or below)
  lastEpoch @2 :UInt64;    # epoch of the last LeaderTerm in its journal (0: none)
  last @3 :UInt64;         # its last seq
}

# Leader to follower, every heartbeat: it is alive; events through `commit` are acknowledged.
struct Heartbeat {
  epoch @0 :UInt64;
  leader @1 :UInt32;
  commit @2 :UInt64;
}

# Leader to follower: "my chain hash at seq is `chain`" (finding where two journals fork).
struct Probe {
  epoch @0 :UInt64;
  seq @1 :UInt64;
  chain @2 :Data;          # exactly 32 bytes (SHA-256 chain hash; all zeros at seq 0)
}

# Follower to leader: whether its chain at `seq` equals the probe's.
struct ProbeReply {
  from @0 :UInt32;
  epoch @1 :UInt64;
  seq @2 :UInt64;
  agree @3 :Bool;
}

# Leader to follower: cut every record after keepLast.
struct Truncate {
  epoch @0 :UInt64;
  keepLast @1 :UInt64;
}

# Leader to follower: records first..last follow, in PeerMessage.rawRecords (first >= 1,
# last >= first, one raw record per seq).
struct Records {
  epoch @0 :UInt64;
  first @1 :UInt64;
  last @2 :UInt64;
}

# Follower to leader: its journal is durable through `durable` in this epoch's stream.
struct Acked {
  from @0 :UInt32;
  epoch @1 :UInt64;
  durable @2 :UInt64;
}

# Follower to leader: it refuses this epoch, having fenced `fenced`.
struct Refuse {
  from @0 :UInt32;
  epoch @1 :UInt64;
  fenced @2 :UInt64;
}

# Leader to follower, every state_hash_every events: the engine's state hash after event `seq`.
# A follower whose own hash at that seq differs stops with an error naming the seq.
struct StateCheck {
  epoch @0 :UInt64;
  seq @1 :UInt64;
  stateHash @2 :UInt64;
}

# Leader to follower: bytes offset .. offset + size(data) - 1 of the engine snapshot at `seq`
# (its Cap'n Proto encoding, replay/codec.h), `total` bytes in all. Chunks come in order, each at
# most cluster::kSnapshotChunkBytes (16 MiB) of data, and end with an installSnapshot.
struct SnapshotChunk {
  epoch @0 :UInt64;
  seq @1 :UInt64;
  offset @2 :UInt64;
  total @3 :UInt64;
  data @4 :Data;
}

# Leader to follower: the snapshot at `seq` has been sent whole; the follower's journal restarts
# after it, the chain hash of record `seq` being `chain`, and the snapshot's state hash is
# `stateHash`.
struct InstallSnapshot {
  epoch @0 :UInt64;
  seq @1 :UInt64;
  chain @2 :Data;          # exactly 32 bytes
  stateHash @3 :UInt64;
}
