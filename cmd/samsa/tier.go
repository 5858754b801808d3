package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/samsa-io/samsa/agent"
)

// defaultHTTP is the agent's HTTP address when neither --http nor $SAMSA_HTTP is set (the
// default http_addr).
const defaultHTTP = "127.0.0.1:9644"

// maxStatusBody bounds what is read of an answer of the agent's HTTP API.
const maxStatusBody = 64 << 20

// runTier dispatches "samsa tier <sub-command>".
func runTier(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printTierUsage(stderr)
		return &usageError{cmd: "tier"}
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "status":
		return tierStatus(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		printTierUsage(stdout)
		return nil
	default:
		return usagef("tier", "unknown sub-command %q (want status)", sub)
	}
}

func printTierUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  samsa tier status [TOPIC] [--http host:port] [--timeout D]

Asks the agent's HTTP endpoint (default $SAMSA_HTTP, else 127.0.0.1:9644).
Run 'samsa tier status -h' for details.
`)
}

// tierStatus implements "samsa tier status [TOPIC]": GET /v1/tier/status as a table.
func tierStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tier status", "tier status [TOPIC] [--http host:port] [--timeout D]",
		"Shows, per partition of the tiered topics (remote.storage.enable=true), or of TOPIC:\n"+
			"  LOCAL        offsets on the agent's disk, start..end (end: the high watermark, exclusive)\n"+
			"  LOCAL-BYTES  size of the local segments\n"+
			"  REMOTE       offsets in object storage, start..end (end exclusive; -: none, ?: not read yet)\n"+
			"  REMOTE-SEGS  segments in object storage, REMOTE-BYTES their size\n"+
			"  BACKLOG      closed segments waiting for upload / their size\n"+
			"  LAST-ERROR   the last failed upload or delete (retried with backoff), - when none\n"+
			"It asks the agent's HTTP endpoint (http_addr), not the Kafka port.",
		stderr)
	def := os.Getenv("SAMSA_HTTP")
	if def == "" {
		def = defaultHTTP
	}
	addr := fs.String("http", def, "the agent's HTTP `host:port` or URL (config key http_addr; $SAMSA_HTTP)")
	timeout := fs.Duration("timeout", 15*time.Second, timeoutHelp)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("tier status", "unexpected argument %q (one topic at most)", pos[1])
	}
	if *timeout <= 0 {
		return usagef("tier status", "--timeout must be positive, got %s", *timeout)
	}
	base, err := httpBase(*addr)
	if err != nil {
		return usagef("tier status", "--http %q: %v", *addr, err)
	}
	u := base + "/v1/tier/status"
	topic := ""
	if len(pos) == 1 {
		topic = pos[0]
		u += "?topic=" + url.QueryEscape(topic)
	}
	var st agent.TierStatusResponse
	if err := getJSON(ctx, u, base, *timeout, &st); err != nil {
		return err
	}
	if len(st.Partitions) == 0 {
		if topic != "" {
			fmt.Fprintf(stdout, "topic %q is not tiered (remote.storage.enable is not true)\n", topic)
		} else {
			fmt.Fprintln(stdout, "no tiered topics (create one with --config remote.storage.enable=true)")
		}
		return nil
	}
	printTierTable(stdout, &st)
	return nil
}

// printTierTable writes one row per partition.
func printTierTable(w io.Writer, st *agent.TierStatusResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOCAL\tLOCAL-BYTES\tREMOTE\tREMOTE-SEGS\tREMOTE-BYTES\tBACKLOG\tLAST-ERROR")
	for _, p := range st.Partitions {
		remote, segs, rbytes := "?", "?", "?"
		if p.ManifestLoaded {
			remote, segs, rbytes = "-", strconv.Itoa(p.RemoteSegments), humanBytes(p.RemoteBytes)
			if p.RemoteStart >= 0 {
				remote = fmt.Sprintf("%d..%d", p.RemoteStart, p.RemoteEnd)
			}
		}
		lastErr := "-"
		if p.LastError != "" {
			lastErr = strings.Join(strings.Fields(p.LastError), " ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d..%d\t%s\t%s\t%s\t%s\t%d/%s\t%s\n", cell(p.Topic), p.Partition, p.LocalStart, p.LocalEnd,
			humanBytes(p.LocalBytes), remote, segs, rbytes, p.BacklogSegs, humanBytes(p.BacklogBytes), lastErr)
	}
	tw.Flush()
}

// cell returns s, quoted when it holds spaces or control characters: text from the HTTP
// answer must stay in its table cell (a samsa agent's topic names never need quoting).
func cell(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// httpBase turns host:port or an http(s) URL into a base URL without a trailing slash.
func httpBase(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("empty address")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("want host:port or an http(s) URL")
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// getJSON GETs u from the agent at base and decodes a 200 answer into v; other answers become
// one-line errors (the agent's JSON error message when it sent one).
func getJSON(ctx context.Context, u, base string, timeout time.Duration, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("agent at %s unreachable: %v (is it running? --http or $SAMSA_HTTP name its http_addr)", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		return fmt.Errorf("agent at %s: read answer: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("agent at %s: %s", base, e.Error)
		}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("agent at %s has no %s (an older samsa, or not a samsa agent)", base, req.URL.Path)
		}
		return fmt.Errorf("agent at %s: HTTP %s", base, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("agent at %s: bad answer: %w", base, err)
	}
	return nil
}
