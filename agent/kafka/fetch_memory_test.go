package kafka

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"testing"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// memoryOf is a remoteMemory over fixed buffers: ranges of file f are in mem.
type memoryOf struct {
	f   *os.File
	mem []byte
}

func (m memoryOf) RangeBytes(fr commitlog.FileRange) ([]byte, bool) {
	if fr.File != m.f {
		return nil, false
	}
	return m.mem[fr.Pos : fr.Pos+fr.Len], true
}

// Ranges of a remote log's memory buffers are written from the buffers (not sent from their
// file), and copied into the socket: reusing a buffer right after the write, as tiering does
// with a released memory chunk, does not change what the client receives.
func TestFetchWritesMemoryRangesByCopy(t *testing.T) {
	local := bytes.Repeat([]byte("local-segment-bytes."), 5000)
	mem := bytes.Repeat([]byte("memory-chunk-bytes!!"), 5000)
	lf := rangeFile(t, local)
	mf := rangeFile(t, bytes.Repeat([]byte{'X'}, len(mem))) // the file says otherwise: must not be sent
	ranges := []commitlog.FileRange{{File: lf, Pos: 100, Len: 40_000}, {File: mf, Pos: 20, Len: 60_000}, {File: mf, Pos: 60_020, Len: 100}}
	pr := fetchPartResult{partition: 0, hw: 10, lso: 10, read: commitlog.ReadResult{Ranges: ranges},
		mem: memoryRanges(memoryOf{f: mf, mem: mem}, ranges)}
	if pr.mem[0] != nil || pr.mem[1] == nil || pr.mem[2] == nil {
		t.Fatalf("memoryRanges picked %v", []bool{pr.mem[0] != nil, pr.mem[1] != nil, pr.mem[2] != nil})
	}
	if memoryRanges(memoryOf{f: mf, mem: mem}, ranges[:1]) != nil {
		t.Fatal("memoryRanges of file ranges only is not nil")
	}
	out := encodeFetch(12, 7, 0, 0, []fetchTopicResult{{name: "t", parts: []fetchPartResult{pr}}})
	want := append([]byte(nil), out.buf[:out.splices[0].at]...)
	want = append(want, local[100:40_100]...)
	want = append(want, mem[20:60_120]...)
	want = append(want, out.buf[out.splices[0].at:]...)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	memBefore := MemoryRecordBytes()
	w := &respWriter{nc: nc, bw: bufio.NewWriterSize(nc, writeBufferSize), m: &metrics{}}
	if err := out.write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	// The client has not read a byte yet; the buffer is reused now.
	for i := range mem {
		mem[i] = 'Z'
	}
	nc.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client got %d bytes, want %d: the memory ranges were not copied at write time", len(b), len(want))
	}
	if n := MemoryRecordBytes() - memBefore; n < 60_100 {
		t.Fatalf("MemoryRecordBytes grew by %d, want at least the 60100 bytes of memory ranges", n)
	}
}
