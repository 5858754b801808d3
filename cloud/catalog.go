package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/samsa-io/samsa/tiering/manifest"
)

// Archive is a bucket prefix that agents upload tiered segments to (DESIGN.md step 6), opened
// for reading. It is safe for concurrent use: an HTTP service opens one and runs many
// catalogs and queries on it.
type Archive struct {
	cfg    Config
	client *objectClient
	prefix string // cfg.Prefix without leading or trailing slashes
	total  Counters
}

// Open checks cfg, builds the S3 client with the standard AWS credential chain, and checks
// that the credentials can be had and the bucket exists. Errors wrap ErrBadConfig,
// ErrNoCredentials, ErrNoBucket or ErrAccessDenied.
func Open(ctx context.Context, cfg Config) (*Archive, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, err := newObjectClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := &Archive{cfg: cfg, client: client, prefix: strings.Trim(cfg.Prefix, "/")}
	if err := client.checkBucket(ctx, &a.total); err != nil {
		return nil, err
	}
	return a, nil
}

// Location names the archive, e.g. "http://127.0.0.1:9000/bucket/prefix".
func (a *Archive) Location() string {
	if a.prefix == "" {
		return a.client.endpoint
	}
	return a.client.endpoint + "/" + a.prefix
}

// Fetched returns the response bytes and requests of everything the archive has done since
// Open (catalogs and queries together).
func (a *Archive) Fetched() (bytes, requests int64) {
	return a.total.Bytes.Load(), a.total.Requests.Load()
}

// dirPrefix is the listing prefix of the archive's top ("" or "prefix/").
func (a *Archive) dirPrefix() string {
	if a.prefix == "" {
		return ""
	}
	return a.prefix + "/"
}

// Topics lists the topics that have at least one partition directory in the archive, sorted.
// (A listed topic may still have no manifest; Partitions tells.)
func (a *Archive) Topics(ctx context.Context) ([]string, error) {
	names, err := a.client.listDirs(ctx, a.dirPrefix(), a.counters(nil))
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// counters returns a query's counters that also count into the archive's totals, or the
// archive's totals alone when n is nil.
func (a *Archive) counters(n *Counters) *Counters {
	if n == nil {
		return &a.total
	}
	return n
}

// manifestFetchers bounds concurrent manifest reads of one topic.
const manifestFetchers = 8

// Partitions reads the manifests of a topic's partitions, sorted by partition. A partition
// directory without a manifest (leftovers of an interrupted first upload) is left out. No
// manifest at all is ErrUnknownTopic, naming the topics the archive has; a manifest that does
// not parse or names another topic or partition wraps ErrCorrupt.
func (a *Archive) Partitions(ctx context.Context, topic string) ([]*manifest.Manifest, error) {
	return a.partitions(ctx, topic, nil)
}

func (a *Archive) partitions(ctx context.Context, topic string, n *Counters) ([]*manifest.Manifest, error) {
	if topic == "" || strings.ContainsAny(topic, "/") || topic == "." || topic == ".." {
		return nil, fmt.Errorf("%w: topic name %q", ErrBadConfig, topic)
	}
	n = a.counters(n)
	dirs, err := a.client.listDirs(ctx, a.dirPrefix()+topic+"/", n)
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", topic, err)
	}
	var parts []int32
	for _, d := range dirs {
		p, err := strconv.ParseInt(d, 10, 32)
		if err == nil && p >= 0 && strconv.FormatInt(p, 10) == d {
			parts = append(parts, int32(p))
		}
	}
	ms := make([]*manifest.Manifest, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(manifestFetchers)
	for i, p := range parts {
		g.Go(func() error {
			m, err := a.readManifest(gctx, topic, p, n)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			ms[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []*manifest.Manifest
	for _, m := range ms {
		if m != nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	if len(out) == 0 {
		return nil, a.unknownTopic(ctx, topic)
	}
	return out, nil
}

// unknownTopic builds the ErrUnknownTopic error, naming up to ten topics that do exist.
func (a *Archive) unknownTopic(ctx context.Context, topic string) error {
	names, err := a.Topics(ctx)
	if err != nil || len(names) == 0 {
		return fmt.Errorf("%w %q: %s holds no topics", ErrUnknownTopic, topic, a.Location())
	}
	more := ""
	if len(names) > 10 {
		names, more = names[:10], ", ..."
	}
	return fmt.Errorf("%w %q in %s (topics: %s%s)", ErrUnknownTopic, topic, a.Location(), strings.Join(names, ", "), more)
}

// readManifest reads and checks one partition manifest.
func (a *Archive) readManifest(ctx context.Context, topic string, p int32, n *Counters) (*manifest.Manifest, error) {
	key := manifest.ManifestKey(a.prefix, topic, p)
	data, err := a.client.get(ctx, key, n)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Decode(data)
	if err != nil {
		return nil, &CorruptError{Key: a.client.url(key), Pos: -1, Offset: -1, Err: err}
	}
	if m.Topic != topic || m.Partition != p {
		return nil, &CorruptError{Key: a.client.url(key), Pos: -1, Offset: -1,
			Err: fmt.Errorf("manifest of %s-%d found under %s-%d", m.Topic, m.Partition, topic, p)}
	}
	return m, nil
}

// TopicInfo is one topic of a catalog: its partitions' manifests, sorted by partition.
type TopicInfo struct {
	Name       string               `json:"topic"`
	Partitions []*manifest.Manifest `json:"partitions"`
}

// Catalog reads the manifests of one topic, or of every topic when topic is "". Topics
// without any manifest are left out of a full catalog; a named one is ErrUnknownTopic.
func (a *Archive) Catalog(ctx context.Context, topic string) ([]TopicInfo, error) {
	names := []string{topic}
	if topic == "" {
		var err error
		if names, err = a.Topics(ctx); err != nil {
			return nil, err
		}
	}
	var out []TopicInfo
	for _, name := range names {
		ms, err := a.partitions(ctx, name, nil)
		if errors.Is(err, ErrUnknownTopic) && topic == "" {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, TopicInfo{Name: name, Partitions: ms})
	}
	return out, nil
}

// WriteCatalogTable writes a catalog as an aligned table: for each partition one row per
// segment (offset range, time range, records, size) and a total row.
func WriteCatalogTable(w io.Writer, topics []TopicInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSEGMENT\tOFFSETS\tFIRST TIMESTAMP\tMAX TIMESTAMP\tRECORDS\tSIZE\tCODECS")
	for _, t := range topics {
		for _, m := range t.Partitions {
			var records, size int64
			first, maxTs := int64(-1), int64(-1)
			for i, s := range m.Segments {
				name := fmt.Sprintf("%020d-%d", s.BaseOffset, s.LeaderEpoch)
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d-%d\t%s\t%s\t%d\t%s\t%s\n", t.Name, m.Partition, name,
					s.BaseOffset, s.LastOffset, FormatTimestamp(s.FirstTimestamp), FormatTimestamp(s.MaxTimestamp),
					s.Records, FormatBytes(s.Size), s.Codecs)
				records += s.Records
				size += s.Size
				if i == 0 {
					first = s.FirstTimestamp
				}
				maxTs = max(maxTs, s.MaxTimestamp)
			}
			offsets := "-"
			if len(m.Segments) > 0 {
				offsets = fmt.Sprintf("%d-%d", m.StartOffset(), m.EndOffset()-1)
			}
			fmt.Fprintf(tw, "%s\t%d\t(%d segments)\t%s\t%s\t%s\t%d\t%s\t\n", t.Name, m.Partition, len(m.Segments),
				offsets, FormatTimestamp(first), FormatTimestamp(maxTs), records, FormatBytes(size))
		}
	}
	return tw.Flush()
}

// WriteCatalogJSON writes a catalog as one JSON document: {"topics":[{"topic", "partitions":
// [manifest...]}]}.
func WriteCatalogJSON(w io.Writer, topics []TopicInfo) error {
	if topics == nil {
		topics = []TopicInfo{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Topics []TopicInfo `json:"topics"`
	}{topics})
}

// FormatTimestamp renders a Kafka timestamp (milliseconds since the epoch) as RFC 3339 in
// UTC with milliseconds, or "-" for a negative one (no timestamp).
func FormatTimestamp(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// FormatBytes renders a byte count with a binary unit: "512 B", "1.5 KiB", "12.3 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
