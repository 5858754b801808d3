package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions (key 18)
//
//	v0     api keys with min/max versions
//	v1     throttle_time_ms
//	v2     same as v1
//	v3     flexible; client software name/version (KIP-511)
//	v4     same as v3 (KIP-899 hints)
//
// A request newer than we speak gets UNSUPPORTED_VERSION in a v0 response
// that lists only ApiVersions itself with our range (KIP-511), which tells
// the client which version to retry with. This is the one API answered
// rather than closed on an unsupported version.

// apiRange is one supported API key with its version range.
type apiRange struct {
	key      int16
	min, max int16
}

// supportedAPIs lists every API key the server answers, in key order. The
// dispatch in server.go must have a case for each.
var supportedAPIs = []apiRange{
	{0, 3, 11}, // Produce
	{1, 4, 16}, // Fetch
	{2, 1, 9},  // ListOffsets
	{3, 0, 12}, // Metadata
	{8, 2, 9},  // OffsetCommit
	{9, 1, 9},  // OffsetFetch
	{10, 0, 4}, // FindCoordinator
	{11, 0, 9}, // JoinGroup
	{12, 0, 4}, // Heartbeat
	{13, 0, 5}, // LeaveGroup
	{14, 0, 5}, // SyncGroup
	{15, 0, 5}, // DescribeGroups
	{16, 0, 4}, // ListGroups
	{18, 0, 4}, // ApiVersions
	{19, 2, 7}, // CreateTopics
	{20, 0, 6}, // DeleteTopics
	{21, 0, 2}, // DeleteRecords
	{22, 0, 5}, // InitProducerId
	{32, 0, 4}, // DescribeConfigs
	{35, 0, 4}, // DescribeLogDirs
	{37, 0, 3}, // CreatePartitions
	{42, 0, 2}, // DeleteGroups
	{44, 0, 1}, // IncrementalAlterConfigs
	{47, 0, 0}, // OffsetDelete
	{60, 0, 1}, // DescribeCluster
}

// apiVersionsKey is the ApiVersions API key.
const apiVersionsKey = 18

// lookupAPI returns the supported range of key, and whether key is supported.
func lookupAPI(key int16) (apiRange, bool) {
	for _, a := range supportedAPIs {
		if a.key == key {
			return a, true
		}
	}
	return apiRange{}, false
}

// handleApiVersions answers an ApiVersions request we could decode.
func (s *Server) handleApiVersions(req *kmsg.ApiVersionsRequest) *kmsg.ApiVersionsResponse {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.Version = req.Version
	resp.ApiKeys = make([]kmsg.ApiVersionsResponseApiKey, 0, len(supportedAPIs))
	for _, a := range supportedAPIs {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}

// apiVersionsTooNew is the v0 answer to an ApiVersions request newer than
// we speak: UNSUPPORTED_VERSION with only ApiVersions' own range, as Kafka
// does (KIP-511).
func apiVersionsTooNew() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a, _ := lookupAPI(apiVersionsKey)
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}
