package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/diskguard"
	"github.com/samsa-io/samsa/agent/groups"
	"github.com/samsa-io/samsa/agent/hostmetrics"
	"github.com/samsa-io/samsa/agent/kafka"
	"github.com/samsa-io/samsa/agent/membudget"
	"github.com/samsa-io/samsa/ingest/mqtt"
	"github.com/samsa-io/samsa/tiering"
)

// Agent is one running samsa node: the commit log, the Kafka listener and the HTTP endpoint.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	store  *commitlog.Store
	guard  *diskguard.Guard
	groups *groups.Coordinator
	kafka  *kafka.Server
	tierer *tiering.Tierer // nil unless tiering.endpoint is set

	bridges []*mqtt.Bridge // mqtt: (mqtt.go); set before ready, then never changed

	budget  *membudget.Budget      // memory: (edge.go)
	host    *hostmetrics.Collector // host_metrics: (edge.go)
	hostPub *hostmetrics.Publisher // nil unless host_metrics.interval is set

	bgStop context.CancelFunc // stops the background watchers (bucket, disk pressure)
	bg     sync.WaitGroup

	kafkaLn net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	serveCh chan error
	ready   atomic.Bool
	started time.Time
}

// New checks cfg and prepares an agent; nothing is opened until Start.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Agent{cfg: cfg, log: log, serveCh: make(chan error, 2)}, nil
}

// Start opens the data directory, recovers the log and binds the listeners. It returns once the
// agent is ready to serve (GET /healthz answers 200 from then on).
func (a *Agent) Start() error {
	a.started = time.Now()
	if err := a.prepareEdge(); err != nil {
		return err
	}
	mode, err := commitlog.ParseFsyncMode(a.cfg.Fsync)
	if err != nil {
		return fmt.Errorf("config key \"fsync\": %w", err)
	}
	if err := a.startGuard(); err != nil {
		return err
	}
	if err := a.startHTTP(); err != nil {
		a.guard.Close()
		return err
	}
	store, err := commitlog.Open(commitlog.Options{
		Dir:           a.cfg.DataDir,
		Fsync:         mode,
		FsyncInterval: a.cfg.FsyncInterval.Duration(),
		TopicDefaults: a.cfg.TopicDefaults,
		Logger:        a.log.With("component", "commitlog"),

		ProducerIDExpiration: a.cfg.ProducerIDExpiration.Duration(),

		AppendGate:              a.guard.Err,
		UnderPressure:           func() bool { return a.guard.Err() != nil },
		RetentionCheckInterval:  a.cfg.RetentionCheckInterval.Duration(),
		CleanerBackoff:          a.cfg.Cleaner.Backoff.Duration(),
		CleanerBufferBytes:      a.cfg.Cleaner.DedupeBufferBytes,
		CleanerIOBytesPerSecond: a.cfg.Cleaner.IOBytesPerSecond,
	})
	if err != nil {
		a.httpSrv.Close()
		a.guard.Close()
		return fmt.Errorf("open data dir: %w", err)
	}
	a.store = store
	fail := func(err error) error {
		a.stopMQTT()
		a.httpSrv.Close()
		if a.groups != nil {
			a.groups.Close()
		}
		a.stopTiering()
		store.Close()
		a.guard.Close()
		return err
	}
	if err := a.startTiering(); err != nil {
		return fail(err)
	}
	if err := a.startGroups(); err != nil {
		return fail(err)
	}
	if err := a.startKafka(); err != nil {
		return fail(err)
	}
	if err := a.startMQTT(); err != nil {
		a.kafka.Shutdown(context.Background())
		return fail(err)
	}
	if err := a.startEdge(); err != nil {
		a.kafka.Shutdown(context.Background())
		return fail(err)
	}
	a.ready.Store(true)
	a.log.Info("samsa agent ready", "kafka", a.KafkaAddr(), "http", a.HTTPAddr(), "data_dir", a.cfg.DataDir,
		"fsync", a.cfg.Fsync, "startup", time.Since(a.started).Round(time.Millisecond))
	return nil
}

// startGuard creates the data directory if needed and starts the disk guard on its
// filesystem; the commit log asks it before every append.
func (a *Agent) startGuard() error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	g, err := diskguard.New(diskguard.Options{
		Dir:            a.cfg.DataDir,
		MinFreeBytes:   a.cfg.Disk.MinFreeBytes,
		MinFreePercent: a.cfg.Disk.MinFreePercent,
		Interval:       a.cfg.Disk.CheckInterval.Duration(),
		Logger:         a.log.With("component", "diskguard"),
	})
	if err != nil {
		return fmt.Errorf("disk guard: %w", err)
	}
	g.Start()
	a.guard = g
	return nil
}

// startGroups opens the group coordinator, which replays __consumer_offsets.
func (a *Agent) startGroups() error {
	g, err := groups.New(groups.Options{
		Store:                 a.store,
		Logger:                a.log.With("component", "groups"),
		MinSessionTimeout:     a.cfg.GroupMinSessionTimeout.Duration(),
		MaxSessionTimeout:     a.cfg.GroupMaxSessionTimeout.Duration(),
		InitialRebalanceDelay: a.cfg.GroupInitialRebalanceDelay.Duration(),
		MaxGroups:             a.cfg.MaxGroups,
		MaxGroupSize:          a.cfg.GroupMaxSize,
		OffsetsRetention:      a.cfg.OffsetsRetention.Duration(),
	})
	if err != nil {
		return fmt.Errorf("group coordinator: %w", err)
	}
	a.groups = g
	return nil
}

// Tiering: how long a bucket check may take, and how often it is repeated.
const (
	bucketCheckTimeout  = 5 * time.Second
	bucketRecheckDown   = 30 * time.Second
	bucketRecheckUp     = 5 * time.Minute
	tieringS3MaxRetries = 3 // the uploader retries with its own backoff: fail requests fast
)

// startTiering builds the object store and starts the Tierer when tiering.endpoint is set. A
// bucket that cannot be reached is a warning and a metric (samsa_tier_store_reachable), not a
// refusal to start: uploads queue and retry until it can be.
func (a *Agent) startTiering() error {
	tc := a.cfg.Tiering
	if !tc.Enabled() {
		return nil
	}
	store, check, err := openObjectStore(tc)
	if err != nil {
		return err
	}
	t, err := tiering.New(store, a.store, tiering.Config{
		Prefix:         tc.Prefix,
		CacheDir:       tc.CacheDirFor(a.cfg.DataDir),
		CacheBytes:     tc.CacheBytes,
		ReadAheadBytes: tc.TieringReadAhead(),
		Logger:         a.log,
	})
	if err != nil {
		return err // "tiering: ..."
	}
	creds := "AWS_ACCESS_KEY_ID" // the secret is never logged, only where the keys come from
	switch {
	case tc.FileDir() != "":
		creds = "none (a directory)"
	case tc.AccessKeyID != "":
		creds = "tiering.access_key_id"
	}
	a.log.Info("tiering on", "component", "tiering", "endpoint", tc.Endpoint, "bucket", tc.Bucket, "prefix", tc.Prefix,
		"region", tc.Region, "credentials", creds, "cache_dir", tc.CacheDirFor(a.cfg.DataDir), "cache_bytes", tc.CacheBytes,
		"read_ahead_bytes", tc.ReadAheadBytes)
	a.tierer = t
	t.Start()
	ctx, cancel := context.WithCancel(context.Background())
	a.bgStop = cancel
	a.bg.Add(2)
	go a.watchBucket(ctx, check)
	go a.watchDiskPressure(ctx)
	return nil
}

// openObjectStore returns the store of the tiering block and a check that it can be reached.
func openObjectStore(tc TieringConfig) (tiering.ObjectStore, func(context.Context) error, error) {
	if dir := tc.FileDir(); dir != "" {
		s, err := tiering.NewFSStore(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("config key \"tiering.endpoint\": %w", err)
		}
		check := func(context.Context) error {
			fi, err := os.Stat(s.Root())
			if err == nil && !fi.IsDir() {
				err = fmt.Errorf("%s is not a directory", s.Root())
			}
			return err
		}
		return s, check, nil
	}
	s, err := tiering.NewS3Store(tiering.S3Config{
		Endpoint:        tc.Endpoint,
		Bucket:          tc.Bucket,
		Region:          tc.Region,
		AccessKeyID:     tc.AccessKeyID,
		SecretAccessKey: tc.SecretAccessKey.Reveal(),
		PathStyle:       tc.PathStyle,
		CAFile:          tc.CAFile,
		MaxRetries:      tieringS3MaxRetries,
	})
	if err != nil {
		return nil, nil, err
	}
	return s, s.CheckBucket, nil
}

// watchBucket checks the bucket at start and then every few minutes (every 30s while it cannot
// be reached), logs the transitions and sets samsa_tier_store_reachable.
func (a *Agent) watchBucket(ctx context.Context, check func(context.Context) error) {
	defer a.bg.Done()
	state := 0 // unknown; 1 reachable; -1 not
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		cctx, cancel := context.WithTimeout(ctx, bucketCheckTimeout)
		err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.tierer.SetReachable(err == nil)
		next := bucketRecheckUp
		switch {
		case err != nil:
			next = bucketRecheckDown
			if state != -1 {
				a.log.Warn("tiering: the bucket cannot be reached; uploads queue and retry until it can",
					"component", "tiering", "endpoint", a.cfg.Tiering.Endpoint, "bucket", a.cfg.Tiering.Bucket, "err", err)
			}
			state = -1
		case state != 1:
			if state == -1 {
				a.log.Info("tiering: the bucket can be reached again", "component", "tiering",
					"endpoint", a.cfg.Tiering.Endpoint, "bucket", a.cfg.Tiering.Bucket)
				a.tierer.Kick()
			}
			state = 1
		}
		timer.Reset(next)
	}
}

// watchDiskPressure polls the disk guard: while it refuses writes, retention runs at every
// poll, so that tiered topics drop their local copies of uploaded segments at once (the commit
// log's UnderPressure hook), and the Tierer is asked to upload what it can.
func (a *Agent) watchDiskPressure(ctx context.Context) {
	defer a.bg.Done()
	tick := time.NewTicker(a.cfg.Disk.CheckInterval.Duration())
	defer tick.Stop()
	refusing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := a.guard.Err() != nil
		if now {
			if !refusing {
				a.log.Info("disk guard refusing writes: dropping local copies of uploaded segments of tiered topics",
					"component", "tiering")
			}
			a.tierer.Kick()
			a.store.KickRetention()
		}
		refusing = now
	}
}

// stopTiering stops the watchers and the Tierer (an upload in flight is abandoned; it is
// redone after a restart). Safe to call when tiering is off.
func (a *Agent) stopTiering() {
	if a.bgStop != nil {
		a.bgStop()
		a.bg.Wait()
	}
	if a.tierer != nil {
		a.tierer.Close()
	}
}

func (a *Agent) startKafka() error {
	ln, err := net.Listen("tcp", a.cfg.KafkaAddr)
	if err != nil {
		return fmt.Errorf("kafka listener on %s: %w", a.cfg.KafkaAddr, err)
	}
	adv := a.cfg.AdvertisedAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, portStr, err := net.SplitHostPort(adv)
	if err != nil {
		ln.Close()
		return fmt.Errorf("config key \"advertised_addr\": %q: %w", adv, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		ln.Close()
		return fmt.Errorf("config key \"advertised_addr\": invalid port in %q", adv)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		a.log.Warn("kafka listener binds all interfaces but advertised_addr is not set; clients are told "+host,
			"hint", "set advertised_addr to an address clients can reach")
	}
	var remote kafka.RemoteLog
	if a.tierer != nil { // never a typed nil in the interface
		remote = a.tierer
	}
	srv, err := kafka.NewServer(kafka.Options{
		Store:             a.store,
		NodeID:            a.cfg.NodeID,
		AdvertisedHost:    host,
		AdvertisedPort:    int32(port),
		AutoCreateTopics:  a.cfg.AutoCreateTopics,
		DefaultPartitions: a.cfg.DefaultPartitions,
		MaxRequestBytes:   a.cfg.SocketRequestMaxBytes,
		MaxQueuedBytes:    int64(a.cfg.QueuedMaxRequestBytes),
		MaxConnections:    a.cfg.MaxConnections,
		Groups:            a.groups,
		Remote:            remote,
		Throttle:          a.kafkaThrottle(),
		Logger:            a.log.With("component", "kafka"),
	})
	if err != nil {
		ln.Close()
		return err
	}
	a.kafka, a.kafkaLn = srv, ln
	go func() { a.serveCh <- srv.Serve(ln) }()
	return nil
}

func (a *Agent) startHTTP() error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener on %s: %w", a.cfg.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.handleHealth)
	mux.HandleFunc("GET /metrics", a.handleMetrics)
	mux.HandleFunc("GET /v1/tier/status", a.handleTierStatus)
	a.httpLn = ln
	a.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server", "err", err)
		}
	}()
	return nil
}

// KafkaAddr is the bound Kafka listener address (useful when kafka_addr used port 0).
func (a *Agent) KafkaAddr() string {
	if a.kafkaLn == nil {
		return ""
	}
	return a.kafkaLn.Addr().String()
}

// HTTPAddr is the bound HTTP listener address.
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Store is the agent's commit log (tests and admin tools inspect it).
func (a *Agent) Store() *commitlog.Store { return a.store }

// Shutdown stops accepting, finishes in-flight requests, flushes the log and writes the clean
// shutdown marker.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.ready.Store(false)
	a.log.Info("samsa agent shutting down")
	a.stopMQTT() // before the store and the group coordinator close
	var errs []error
	if a.kafka != nil {
		if err := a.kafka.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("kafka server: %w", err))
		}
	}
	if a.groups != nil {
		a.groups.Close()
	}
	a.stopTiering()
	a.stopEdge()
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("commit log: %w", err))
		}
	}
	if a.httpSrv != nil {
		a.httpSrv.Shutdown(ctx)
	}
	if a.guard != nil {
		a.guard.Close()
	}
	if len(errs) == 0 {
		a.log.Info("samsa agent stopped cleanly")
	}
	return errors.Join(errs...)
}

// Run starts an agent and serves until ctx is cancelled, then shuts it down cleanly.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	a, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-a.serveCh:
		if err != nil {
			a.log.Error("kafka listener failed", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.Shutdown(sctx)
}
