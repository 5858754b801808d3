package cloud

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// QueryParams are the names ParseQueryParams reads, the flags of "samsa-cloud query" and the
// query string parameters of an HTTP endpoint alike. An underscore may stand for a dash
// ("from_offset").
var QueryParams = []string{"topic", "partition", "from-offset", "to-offset", "since", "until", "max-lateness",
	"key", "key-base64", "limit"}

// ParseQueryParams builds QueryOptions from string parameters, so that the command line and
// an HTTP service share one syntax:
//
//	topic         the topic (required)
//	partition     partition numbers, comma-separated (default: all)
//	from-offset   first offset (inclusive)
//	to-offset     offset to stop before (exclusive)
//	since, until  timestamps, [since, until): see ParseTime; relative ones count back from now
//	max-lateness  QueryOptions.MaxLateness, a duration as ParseDuration reads it
//	key           only records with this key (UTF-8); key-base64: the same in base64
//	limit         at most this many records
//
// Other names are ignored. Errors name the parameter and wrap ErrBadConfig or ErrBadTime.
// A range that selects nothing is not an error here: NewQuery reports it (ErrEmptyRange).
func ParseQueryParams(v url.Values, now time.Time) (QueryOptions, error) {
	get := func(name string) (string, bool) {
		for _, n := range []string{name, strings.ReplaceAll(name, "-", "_")} {
			if vs, ok := v[n]; ok && len(vs) > 0 {
				return vs[len(vs)-1], true
			}
		}
		return "", false
	}
	o := NewQueryOptions("")
	o.Topic, _ = get("topic")
	if o.Topic == "" {
		return o, fmt.Errorf("%w: topic is required", ErrBadConfig)
	}
	if s, ok := get("partition"); ok && s != "" {
		for _, p := range strings.Split(s, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return o, fmt.Errorf("%w: partition %q: want partition numbers, e.g. 0 or 0,2", ErrBadConfig, s)
			}
			o.Partitions = append(o.Partitions, int32(n))
		}
	}
	var err error
	if o.FromOffset, err = offsetParam(get, "from-offset", 0); err != nil {
		return o, err
	}
	if o.ToOffset, err = offsetParam(get, "to-offset", NoEnd); err != nil {
		return o, err
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if s, ok := get(p.name); ok {
			if *p.t, err = ParseTime(s, now); err != nil {
				return o, fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	if s, ok := get("max-lateness"); ok {
		if o.MaxLateness, err = ParseDuration(s); err != nil {
			return o, fmt.Errorf("%w: max-lateness %q: %v (use 1ms for timestamps that never go back)", ErrBadConfig, s, err)
		}
	}
	key, hasKey := get("key")
	key64, hasKey64 := get("key-base64")
	switch {
	case hasKey && hasKey64:
		return o, fmt.Errorf("%w: key and key-base64 exclude each other", ErrBadConfig)
	case hasKey64:
		if o.Key, err = base64.StdEncoding.DecodeString(key64); err != nil {
			return o, fmt.Errorf("%w: key-base64: %v", ErrBadConfig, err)
		}
		if o.Key == nil {
			o.Key = []byte{}
		}
	case hasKey:
		o.Key = []byte(key)
	}
	if s, ok := get("limit"); ok {
		if o.Limit, err = strconv.ParseInt(s, 10, 64); err != nil || o.Limit < 0 {
			return o, fmt.Errorf("%w: limit %q: want a count (0: no limit)", ErrBadConfig, s)
		}
	}
	return o, nil
}

// offsetParam parses an offset parameter; absent or empty gives def.
func offsetParam(get func(string) (string, bool), name string, def int64) (int64, error) {
	s, ok := get(name)
	if !ok || s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %s %q: want an offset (0 or more)", ErrBadConfig, name, s)
	}
	return v, nil
}
