// Package groups is samsa's group coordinator: Kafka's classic consumer group protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and committed offsets (OffsetCommit,
// OffsetFetch, OffsetDelete), plus the admin views (ListGroups, DescribeGroups, DeleteGroups).
// The Kafka server in agent/kafka decodes requests and hands the kmsg structs to a
// [Coordinator]; this package never imports agent/kafka.
//
// # Protocol
//
// A group moves through Kafka's states: Empty, PreparingRebalance (the join phase),
// CompletingRebalance (waiting for the leader's SyncGroup), Stable, and Dead (deleted). The
// coordinator never looks inside member metadata or assignments: it picks a protocol every
// member supports (each member votes for its most preferred candidate; the most votes win) and
// hands the leader every member's metadata for it, then hands each member the bytes the leader
// assigned it. So every client-side balancer works: range, roundrobin, sticky,
// cooperative-sticky, librdkafka's and Java's alike.
//
//   - KIP-394: a v4+ JoinGroup without a member id gets MEMBER_ID_REQUIRED and a fresh id,
//     held as pending for a session timeout; the join phase waits for pending members too.
//   - KIP-345 static membership: a member with a group.instance.id that rejoins without its
//     member id (a restart) while the group is Stable gets a new member id and the old one's
//     assignment without a rebalance, as long as the protocol the group would select stays the
//     same (Kafka's rule: a restarted consumer's metadata differs anyway); a restarted leader
//     learns it need not assign through skip_assignment (KIP-814). The old member id is fenced (FENCED_INSTANCE_ID). Static
//     members that have not rejoined when a join phase ends stay in the group until their
//     session times out, as in Kafka.
//   - The join phase ends when every known member has rejoined (and no pending id is
//     outstanding) or when the largest rebalance timeout passes; members that did not rejoin
//     are removed. A join phase on an Empty group first waits the initial rebalance delay
//     (group.initial.rebalance.delay.ms), extended while new members keep arriving, up to the
//     rebalance timeout, so a group that starts together rebalances once.
//   - Members expire when no heartbeat, join, sync or commit arrives within their session
//     timeout (members waiting in JoinGroup or SyncGroup are kept alive; a new member waiting in
//     JoinGroup for more than 5 minutes is not). Members that got a JoinGroup answer but do not
//     send SyncGroup within the rebalance timeout are removed and the group rebalances.
//   - Fencing follows Kafka: ILLEGAL_GENERATION for a stale generation, UNKNOWN_MEMBER_ID for a
//     member the group does not know, REBALANCE_IN_PROGRESS for a heartbeat or sync during the
//     join phase (and a commit while CompletingRebalance), FENCED_INSTANCE_ID for an instance
//     id now owned by another member id.
//   - OffsetCommit with generation -1 on an Empty (or unknown) group is a "simple" commit, as
//     standalone consumers and admin tools send; otherwise member id and generation must match.
//
// Calls that wait (JoinGroup, SyncGroup, and commits and deletions until the offsets topic's
// high watermark covers their records) take a done callback instead of blocking, so the Kafka
// server can answer them later without holding up the connection's reader. A callback runs
// exactly once, on whatever goroutine completes the call, never with a coordinator lock held;
// it must not block.
//
// # Persistence
//
// Group metadata and committed offsets are records in the internal topic __consumer_offsets,
// in Kafka's own formats: an [kmsg.OffsetCommitKey] (version 1) with an [kmsg.OffsetCommitValue]
// (version 3) per committed partition, a [kmsg.GroupMetadataKey] (version 2) with a
// [kmsg.GroupMetadataValue] (version 3) when a generation completes, and tombstones (null
// values) for deleted offsets and groups. The coordinator creates the topic at start if it is
// missing, with one partition (one node coordinates every group; replication will later
// protect that partition like any other), cleanup.policy=compact and segment.bytes=8 MiB.
//
// A commit is appended with Log.Append and acknowledged once the high watermark covers it (at
// once with fsync=interval, after the fdatasync with fsync=always). Its offsets are visible to
// OffsetFetch from the moment they are appended. If the wait fails the partition is offline
// (a storage error): the client gets an error, and the next start rebuilds the state from what
// the disk holds. Group metadata records are written without waiting: after a restart groups
// come back Empty, with their protocol type, generation and offsets, and members rejoin.
//
// At start the coordinator replays the topic from its log start. Until log compaction lands
// in the commit log the topic keeps every record, so the replay reads all of history; memory
// only ever holds the latest value per key.
//
// # Bounds
//
// Memory is bounded by live groups and partitions, never by history or client input:
//
//   - at most Options.MaxGroups groups (config max_groups, default 10000). A request that
//     would create another gets COORDINATOR_NOT_AVAILABLE: retriable, because the cap frees
//     up as empty groups are deleted or their offsets expire, and no group-specific Kafka code
//     fits better. A commit that carries no valid partition never creates a group;
//   - at most Options.MaxGroupSize members (and pending member ids) per group (group.max.size,
//     config group_max_size): GROUP_MAX_SIZE_REACHED;
//   - a member's protocol names and metadata, and the assignment it is given, at most
//     Options.MaxMemberMetadataBytes (1 MiB) each: INVALID_REQUEST, which clients treat as
//     fatal, as they should for a request the broker will never accept; all members' metadata
//     and assignments together at most Options.MaxMetadataBytes (64 MiB):
//     COORDINATOR_NOT_AVAILABLE until others leave;
//   - offsets only for partitions that exist (UNKNOWN_TOPIC_OR_PARTITION otherwise), commit
//     metadata at most 4096 bytes (offset.metadata.max.bytes, OFFSET_METADATA_TOO_LARGE).
//     Offsets of deleted (or deleted and re-created) topics are dropped, with tombstones, by a
//     periodic sweep and whenever OffsetFetch meets them. The sweep also expires the offsets of
//     Empty groups after Options.OffsetsRetention (offsets.retention.minutes, 7 days) and
//     deletes Empty groups left with nothing.
//
// # Locking
//
// One mutex (Coordinator.mu) guards every group: group operations are short in-memory updates
// plus, for writes, one Log.Append (a pwrite), so the records land in the log in the same
// order as the changes they describe. Nothing waits with it held: high watermark waits and
// callbacks run after it is released. Timers (session, join phase, sync) take it when they
// fire and check that what they were set for still holds.
package groups
