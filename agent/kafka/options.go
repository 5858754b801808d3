package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/groups"
)

// Options configures a Server. Zero values get the documented defaults in NewServer.
type Options struct {
	Store             *commitlog.Store // required
	NodeID            int32            // this broker's id; default 0
	AdvertisedHost    string           // host clients are told to connect to; required
	AdvertisedPort    int32            // port clients are told to connect to; required
	AutoCreateTopics  bool             // create unknown topics on Metadata/Produce
	DefaultPartitions int32            // partitions of auto-created topics; default 1
	MaxRequestBytes   int32            // socket.request.max.bytes; default 100 MiB
	MaxQueuedBytes    int64            // queued.max.request.bytes: all requests in memory at once; default 128 MiB
	MaxConnections    int              // default 1024
	MaxInFlight       int              // requests queued per connection before reading pauses; default 64
	Logger            *slog.Logger     // default slog.Default()
	// Groups coordinates consumer groups and stores committed offsets; nil answers every
	// group API with COORDINATOR_NOT_AVAILABLE.
	Groups *groups.Coordinator
	// Remote serves offsets of remote.storage.enable topics that object storage holds below
	// the local log start; nil: everything is local.
	Remote RemoteLog
	// Throttle, when set, is asked for every Produce and Fetch request how long the client
	// must wait before its next request (0: not at all); see throttle.go. The agent's memory
	// budget answers it.
	Throttle func() time.Duration
}

// RemoteLog is what the server needs of tiered storage (tiering.Tierer implements it).
type RemoteLog interface {
	// RemoteStart is the first offset in object storage, or -1 when there is none; an error
	// (wrapping commitlog.ErrStorage) when it is not known yet.
	RemoteStart(topic string, partition int32) (int64, error)
	// RemoteLastOffset is the last offset in object storage, or -1.
	RemoteLastOffset(topic string, partition int32) int64
	// Read returns whole batches at or after offset from object storage (empty: nothing
	// there at or after offset); below RemoteStart it is commitlog.ErrOffsetOutOfRange.
	Read(ctx context.Context, topic string, partition int32, offset, maxBytes int64, minOne bool) (commitlog.ReadResult, error)
	// OffsetForTimestamp finds the first record in object storage with a timestamp >= ts.
	OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (offset, timestamp int64, found bool, err error)
}

// remoteMemory is implemented by a RemoteLog whose reads return ranges of reused memory
// buffers (tiering's memory chunks). Those ranges are written from the bytes RangeBytes
// returns, with write(2), which copies them into the socket: sendfile would hand the
// buffer's pages themselves to the socket, where they may stay after the write returned
// and change when the buffer is reused. The bytes stay valid until the read is released.
type remoteMemory interface {
	RangeBytes(fr commitlog.FileRange) (b []byte, ok bool)
}

func (o *Options) setDefaults() error {
	if o.Store == nil {
		return fmt.Errorf("kafka server: Options.Store is required")
	}
	if o.AdvertisedHost == "" || o.AdvertisedPort <= 0 {
		return fmt.Errorf("kafka server: advertised host and port are required (got %q:%d)", o.AdvertisedHost, o.AdvertisedPort)
	}
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = 1
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 100 << 20
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 128 << 20
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1024
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
