package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRequestBody decodes arbitrary request bodies of every API key and version the server
// speaks (FuzzReadRequest reaches them only through a guessed frame header). The selectors
// pick a supported key and one of its versions, so every exec decodes a body. Nothing may
// panic; a refused body is a *frameError; a decoded request re-encodes to a body that decodes
// again and re-encodes to the same bytes; its response kind encodes.
func FuzzRequestBody(f *testing.F) {
	for _, s := range bodySeeds(f) {
		f.Add(s.api, s.version, s.body)
	}
	f.Fuzz(func(t *testing.T, apiSel, versionSel uint8, body []byte) {
		api := supportedAPIs[int(apiSel)%len(supportedAPIs)]
		version := api.min + int16(int(versionSel)%int(api.max-api.min+1))
		req, err := parseRequest(bodyFrame(api.key, version, body))
		if err != nil {
			var fe *frameError
			if !errors.As(err, &fe) || fe.key != api.key || fe.version != version {
				t.Fatalf("%s v%d: %v is not a frameError of its key and version", kmsg.NameForKey(api.key), version, err)
			}
			return
		}
		if req.msg == nil || req.key != api.key || req.version != version || req.corrID != 7 || req.clientID != "fuzz" {
			t.Fatalf("%s v%d decoded as %+v", kmsg.NameForKey(api.key), version, req)
		}
		enc := req.msg.AppendTo(nil)
		again, err := parseRequest(bodyFrame(api.key, version, enc))
		if err != nil {
			t.Fatalf("%s v%d: re-encoded body does not decode: %v\nbody %x\nre-encoded %x", kmsg.NameForKey(api.key), version, err, body, enc)
		}
		if enc2 := again.msg.AppendTo(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s v%d: re-encoding is not stable:\n%x\n%x", kmsg.NameForKey(api.key), version, enc, enc2)
		}
		resp := req.msg.ResponseKind()
		resp.SetVersion(version)
		_ = appendResponse(nil, req.corrID, resp)
	})
}

// bodyFrame frames a request body (without the size prefix): header v1, or v2 with an empty
// tag buffer for flexible versions, correlation id 7 and client id "fuzz".
func bodyFrame(key, version int16, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 7)
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "fuzz"...)
	if msg := kmsg.RequestForKey(key); msg != nil {
		msg.SetVersion(version)
		if msg.IsFlexible() {
			b = append(b, 0)
		}
	}
	return append(b, body...)
}

// bodySeed is one FuzzRequestBody input.
type bodySeed struct {
	api, version uint8
	body         []byte
}

// bodySeeds are the bodies of seedFrames (real requests of the main APIs) and every
// supported key's default request at its lowest and highest version.
func bodySeeds(tb testing.TB) map[string]bodySeed {
	sel := func(key, version int16) (uint8, uint8) {
		for i, a := range supportedAPIs {
			if a.key == key {
				return uint8(i), uint8(version - a.min)
			}
		}
		return 0, 0
	}
	seeds := map[string]bodySeed{}
	for name, frame := range seedFrames(tb) {
		if len(frame) < 4+minHeaderBytes {
			continue
		}
		req, err := parseRequest(frame[4:])
		if err != nil || req.msg == nil {
			continue
		}
		a, v := sel(req.key, req.version)
		seeds[name] = bodySeed{a, v, req.msg.AppendTo(nil)}
	}
	for _, api := range supportedAPIs {
		for _, v := range []int16{api.min, api.max} {
			msg := kmsg.RequestForKey(api.key)
			msg.SetVersion(v)
			a, vs := sel(api.key, v)
			seeds[fmt.Sprintf("default_%s_v%d", kmsg.NameForKey(api.key), v)] = bodySeed{a, vs, msg.AppendTo(nil)}
		}
	}
	return seeds
}

// TestWriteRequestBodyFuzzCorpus rewrites testdata/fuzz/FuzzRequestBody when
// SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteRequestBodyFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRequestBody")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := bodySeeds(t)
	names := make([]string, 0, len(seeds))
	for name := range seeds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := seeds[name]
		content := fmt.Sprintf("go test fuzz v1\nbyte(%q)\nbyte(%q)\n[]byte(%q)\n", s.api, s.version, s.body)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
