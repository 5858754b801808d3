package hostmetrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// DefaultTopic is the topic samples are appended to unless configured otherwise.
const DefaultTopic = "_samsa.host"

// topicSegmentBytes is the segment size of a topic the Publisher creates: small, so retention
// frees space in small steps on a small card.
const topicSegmentBytes = 1 << 20

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	Store    *commitlog.Store // required
	Topic    string           // default DefaultTopic
	Interval time.Duration    // > 0
	Logger   *slog.Logger     // default slog.Default()
}

// Publisher appends a Sample to a topic every interval until Close.
type Publisher struct {
	c      *Collector
	opts   PublisherOptions
	log    *commitlog.Log
	cancel context.CancelFunc
	done   chan struct{}

	published atomic.Uint64
	failed    atomic.Uint64

	closeOnce sync.Once
}

// StartPublisher opens (creating it when missing) the topic and starts appending c's samples,
// the first one at once.
func StartPublisher(c *Collector, o PublisherOptions) (*Publisher, error) {
	if o.Store == nil || o.Interval <= 0 {
		return nil, errors.New("host metrics publisher: a store and an interval > 0 are required")
	}
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := o.Store.Topic(o.Topic)
	if t == nil {
		var err error
		t, err = o.Store.CreateTopic(o.Topic, 1, map[string]string{"segment.bytes": fmt.Sprint(topicSegmentBytes)}, false)
		if errors.Is(err, commitlog.ErrTopicExists) {
			t = o.Store.Topic(o.Topic)
		} else if err != nil {
			return nil, fmt.Errorf("host metrics topic %q: %w", o.Topic, err)
		}
	}
	l := t.Partition(0)
	if l == nil {
		return nil, fmt.Errorf("host metrics topic %q: no partition 0", o.Topic)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{c: c, opts: o, log: l, cancel: cancel, done: make(chan struct{})}
	go p.run(ctx)
	return p, nil
}

func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.opts.Interval)
	defer tick.Stop()
	failing := false
	for {
		err := p.publish(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.failed.Add(1)
			if !failing {
				p.opts.Logger.Warn("host metrics not appended; retrying every interval", "topic", p.opts.Topic, "err", err)
			}
			failing = true
		case err == nil:
			p.published.Add(1)
			if failing {
				p.opts.Logger.Info("host metrics appended again", "topic", p.opts.Topic)
			}
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publish takes one sample and appends it as one record.
func (p *Publisher) publish(ctx context.Context) error {
	s := p.c.Sample(ctx)
	value, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode sample: %w", err)
	}
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	b.Add(s.Time.UnixMilli(), []byte(s.Hostname), value, nil)
	records, err := b.Build()
	if err != nil {
		return fmt.Errorf("build batch: %w", err)
	}
	if _, err := p.log.Append(records); err != nil {
		return fmt.Errorf("append to %s: %w", p.opts.Topic, err)
	}
	return nil
}

// Close stops publishing and waits for an append in progress.
func (p *Publisher) Close() {
	p.closeOnce.Do(func() {
		p.cancel()
		<-p.done
	})
}

// WriteMetrics writes the publisher's counters in Prometheus text format.
func (p *Publisher) WriteMetrics(w io.Writer) {
	fmt.Fprintf(w, "# HELP samsa_host_metrics_published_total Host samples appended to the host metrics topic.\n"+
		"# TYPE samsa_host_metrics_published_total counter\nsamsa_host_metrics_published_total %d\n", p.published.Load())
	fmt.Fprintf(w, "# HELP samsa_host_metrics_publish_errors_total Host samples that could not be appended.\n"+
		"# TYPE samsa_host_metrics_publish_errors_total counter\nsamsa_host_metrics_publish_errors_total %d\n", p.failed.Load())
}
