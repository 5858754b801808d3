package kafka

// DescribeConfigs (API key 32), versions 0–4.
//
// Version notes: v1 added IncludeSynonyms, Source and ConfigSynonyms (v0 has IsDefault
// instead of Source), v2 is v1, v3 added IncludeDocumentation, ConfigType and Documentation,
// v4 is flexible.
//
// Topics describe their effective configs from the store. The broker resource (name "" or
// this agent's node id) describes a few read-only settings of the agent; they come from the
// agent config file and cannot be altered over the protocol.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// handleDescribeConfigs describes topic and broker configs.
func (s *Server) handleDescribeConfigs(_ context.Context, req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := kmsg.NewPtrDescribeConfigsResponse()
	resp.Version = req.Version
	synonyms := req.Version >= 1 && req.IncludeSynonyms
	docs := req.Version >= 3 && req.IncludeDocumentation
	for i := range req.Resources {
		r := &req.Resources[i]
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType = r.ResourceType
		res.ResourceName = r.ResourceName
		entries, code, msg := s.adminDescribeResource(r)
		if code != nil {
			adminSetErr(&res.ErrorCode, &res.ErrorMessage, code, msg)
			resp.Resources = append(resp.Resources, res)
			continue
		}
		res.Configs = adminDescribeEntries(entries, r.ConfigNames, req.Version, synonyms, docs)
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}

// adminDescribeResource returns every config entry of one resource, or the error to answer with.
func (s *Server) adminDescribeResource(r *kmsg.DescribeConfigsRequestResource) ([]commitlog.ConfigEntry, *kerr.Error, string) {
	switch r.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if err := commitlog.ValidateTopicName(r.ResourceName); err != nil {
			return nil, kerr.InvalidTopicException, err.Error()
		}
		t := s.store.Topic(r.ResourceName)
		if t == nil {
			return nil, kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", r.ResourceName)
		}
		return t.DescribeConfigs(), nil, ""
	case kmsg.ConfigResourceTypeBroker:
		if code, msg := s.adminCheckBrokerName(r.ResourceName); code != nil {
			return nil, code, msg
		}
		return s.adminBrokerConfigs(), nil, ""
	default:
		return nil, kerr.InvalidRequest, fmt.Sprintf(
			"unsupported config resource type %d; this agent describes topics (2) and its broker (4)", r.ResourceType)
	}
}

// adminCheckBrokerName accepts "" or this agent's node id as a broker resource name, as Kafka does.
func (s *Server) adminCheckBrokerName(name string) (*kerr.Error, string) {
	if name == "" || name == strconv.FormatInt(int64(s.opts.NodeID), 10) {
		return nil, ""
	}
	return kerr.InvalidRequest, fmt.Sprintf("unexpected broker id, expected %d or empty string, but received %q", s.opts.NodeID, name)
}

// adminBrokerConfigs lists the agent settings DescribeConfigs shows for the broker resource.
func (s *Server) adminBrokerConfigs() []commitlog.ConfigEntry {
	entry := func(name, value string, typ kmsg.ConfigType, doc string) commitlog.ConfigEntry {
		return commitlog.ConfigEntry{
			Name:     name,
			Value:    value,
			Source:   commitlog.SourceStaticBroker,
			ReadOnly: true,
			Type:     int8(typ),
			Doc:      doc,
		}
	}
	return []commitlog.ConfigEntry{
		entry("broker.id", strconv.FormatInt(int64(s.opts.NodeID), 10), kmsg.ConfigTypeInt,
			"The node id of this agent."),
		entry("num.partitions", strconv.FormatInt(int64(s.opts.DefaultPartitions), 10), kmsg.ConfigTypeInt,
			"The default number of partitions of new topics."),
		entry("default.replication.factor", "1", kmsg.ConfigTypeInt,
			"The replication factor of new topics; a single agent keeps one replica."),
		entry("auto.create.topics.enable", strconv.FormatBool(s.opts.AutoCreateTopics), kmsg.ConfigTypeBoolean,
			"Whether Metadata and Produce requests create unknown topics."),
		entry("socket.request.max.bytes", strconv.FormatInt(int64(s.opts.MaxRequestBytes), 10), kmsg.ConfigTypeInt,
			"The largest request the agent accepts, in bytes."),
	}
}

// adminDescribeEntries converts config entries for a response, keeping those named in names
// (nil or empty keeps all, as in Kafka). Fields a version cannot carry are left unset.
func adminDescribeEntries(entries []commitlog.ConfigEntry, names []string, version int16, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var want map[string]bool
	if len(names) > 0 {
		want = make(map[string]bool, len(names))
		for _, n := range names {
			want[n] = true
		}
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(entries))
	for _, e := range entries {
		if want != nil && !want[e.Name] {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = e.Name
		if !e.Sensitive {
			c.Value = kmsg.StringPtr(e.Value)
		}
		c.ReadOnly = e.ReadOnly
		c.IsDefault = e.Source == commitlog.SourceDefault
		c.Source = kmsg.ConfigSource(e.Source)
		c.IsSensitive = e.Sensitive
		if synonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name = e.Name
			syn.Value = c.Value
			syn.Source = c.Source
			c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{syn}
		}
		if version >= 3 {
			c.ConfigType = kmsg.ConfigType(e.Type)
			if docs && e.Doc != "" {
				c.Documentation = kmsg.StringPtr(e.Doc)
			}
		}
		out = append(out, c)
	}
	return out
}
