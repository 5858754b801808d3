package commitlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// A partition keeps small checkpoint files beside its segments: log-start-offset and
// delete-records-offset (one offset each) and cleaner-checkpoint.json. A flipped bit in one
// of them must not turn into deleted segments or a wrong compaction, so each carries a CRC-32C
// of its content, and a file that fails its check is treated as absent (with a warning).
//
// An offset file (version 1) is three lines, every one ending in "\n":
//
//	offset-checkpoint v1
//	<offset: a decimal number, no sign, no leading zeros>
//	crc32c <CRC-32C of the two lines above, newlines included: 8 lowercase hex digits>
//
// Earlier versions wrote the bare decimal number (and a newline). Such a file still loads,
// but nothing can verify it: it is trusted only where it cannot delete data (see loadLogStart),
// and is rewritten in version 1 when it loads.
//
// The cleaner checkpoint stays one JSON object, so that tools reading first_dirty keep working:
//
//	{"version":1,"first_dirty":F,...,"crc32c":C}\n
//
// where C (decimal) is the CRC-32C of every byte before `,"crc32c":` (the object without its
// last field and closing brace). Earlier versions wrote the object without version and crc32c.

// offsetFileHeader is the first line of a version 1 offset file.
const offsetFileHeader = "offset-checkpoint v1\n"

// offsetFileMagic is what every version of the checked offset format starts with: a file that
// starts otherwise is read as a bare number (written by an earlier version).
const offsetFileMagic = "offset-checkpoint "

// offsetFileCRC starts the checksum line of an offset file.
const offsetFileCRC = "crc32c "

// encodeOffsetFile returns the version 1 content of an offset file holding offset.
func encodeOffsetFile(offset int64) []byte {
	b := make([]byte, 0, len(offsetFileHeader)+20+1+len(offsetFileCRC)+8+1)
	b = append(b, offsetFileHeader...)
	b = strconv.AppendInt(b, offset, 10)
	b = append(b, '\n')
	return fmt.Appendf(b, "%s%08x\n", offsetFileCRC, crc32.Checksum(b, crc32c))
}

// decodeOffsetFile reads an offset file. checked reports that it was in the version 1 format
// and its checksum matched; false with a nil error is a bare number written by an earlier
// version. An error describes what is wrong with the content.
func decodeOffsetFile(data []byte) (offset int64, checked bool, err error) {
	if !bytes.HasPrefix(data, []byte(offsetFileMagic)) {
		// The format of earlier versions, read as they did. No single flipped bit turns a
		// version 1 file into one: its first byte would have to become a digit or a space,
		// and the rest still has letters.
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("neither a checkpoint nor a bare offset: %s", quoteContent(data))
		}
		return n, false, nil
	}
	header, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(header)+"\n" != offsetFileHeader {
		return 0, false, fmt.Errorf("unsupported format line %q", header)
	}
	value, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return 0, false, fmt.Errorf("truncated after the format line: %s", quoteContent(data))
	}
	sumLine, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return 0, false, fmt.Errorf("no complete checksum line: %s", quoteContent(data))
	}
	if len(rest) > 0 {
		return 0, false, fmt.Errorf("%d bytes after the checksum line", len(rest))
	}
	hexSum, ok := bytes.CutPrefix(sumLine, []byte(offsetFileCRC))
	stored, perr := strconv.ParseUint(string(hexSum), 16, 32)
	if !ok || perr != nil || fmt.Sprintf("%08x", stored) != string(hexSum) {
		return 0, false, fmt.Errorf("malformed checksum line %q", sumLine)
	}
	covered := data[:len(header)+1+len(value)+1]
	if sum := crc32.Checksum(covered, crc32c); sum != uint32(stored) {
		return 0, false, fmt.Errorf("checksum mismatch: the file says %08x, its content has %08x (offset line %q)", stored, sum, value)
	}
	n, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != string(value) {
		return 0, false, fmt.Errorf("offset line %q is not a non-negative decimal number", value)
	}
	return n, true, nil
}

// quoteContent quotes the start of a file's content for a log message.
func quoteContent(data []byte) string {
	const limit = 64
	if len(data) > limit {
		return fmt.Sprintf("%q... (%d bytes)", data[:limit], len(data))
	}
	return fmt.Sprintf("%q", data)
}

// cleanerCheckpointVersion is the version the cleaner checkpoint is written in.
const cleanerCheckpointVersion = 1

// cleanerCheckpointCRC introduces the checksum field, the last of the object.
const cleanerCheckpointCRC = `,"crc32c":`

// cleanerCheckpointFile is the JSON object of cleaner-checkpoint.json, less its checksum.
type cleanerCheckpointFile struct {
	Version int `json:"version"`
	cleanerCheckpoint
}

// encodeCleanerCheckpoint returns the version 1 content of cleaner-checkpoint.json.
func encodeCleanerCheckpoint(ck cleanerCheckpoint) ([]byte, error) {
	body, err := json.Marshal(cleanerCheckpointFile{Version: cleanerCheckpointVersion, cleanerCheckpoint: ck})
	if err != nil {
		return nil, fmt.Errorf("encode cleaner checkpoint: %w", err)
	}
	body = body[:len(body)-1] // the closing brace: the checksum field goes before it
	return fmt.Appendf(body, "%s%d}\n", cleanerCheckpointCRC, crc32.Checksum(body, crc32c)), nil
}

// decodeCleanerCheckpoint reads cleaner-checkpoint.json and validates what it holds. A file
// without the checksum field (written by an earlier version) decodes with unchecked set.
func decodeCleanerCheckpoint(data []byte) (cleanerCheckpoint, error) {
	var f cleanerCheckpointFile
	if i := bytes.LastIndex(data, []byte(cleanerCheckpointCRC)); i >= 0 {
		digits, ok := bytes.CutSuffix(data[i+len(cleanerCheckpointCRC):], []byte("}\n"))
		stored, err := strconv.ParseUint(string(digits), 10, 32)
		if !ok || err != nil || strconv.FormatUint(stored, 10) != string(digits) {
			return cleanerCheckpoint{}, fmt.Errorf("malformed checksum field at byte %d: %s", i, quoteContent(data[i:]))
		}
		if sum := crc32.Checksum(data[:i], crc32c); sum != uint32(stored) {
			return cleanerCheckpoint{}, fmt.Errorf("checksum mismatch: the file says %d, its content has %d", stored, sum)
		}
		if err := decodeStrictJSON(append(data[:i:i], '}'), &f); err != nil {
			return cleanerCheckpoint{}, err
		}
		if f.Version != cleanerCheckpointVersion {
			return cleanerCheckpoint{}, fmt.Errorf("unsupported version %d", f.Version)
		}
	} else {
		// Earlier versions' format: the same object without version and checksum. It had no
		// other fields, so an unknown one is a damaged name.
		if err := decodeStrictJSON(data, &f); err != nil {
			return cleanerCheckpoint{}, err
		}
		if f.Version != 0 {
			return cleanerCheckpoint{}, fmt.Errorf("version %d without its checksum field", f.Version)
		}
		f.unchecked = true
	}
	if err := f.validate(); err != nil {
		return cleanerCheckpoint{}, err
	}
	return f.cleanerCheckpoint, nil
}

// decodeStrictJSON decodes one JSON object into v: no unknown fields, nothing after it.
func decodeStrictJSON(data []byte, v any) error {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("not a JSON object: %s", quoteContent(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON object at byte %d", dec.InputOffset())
	}
	return nil
}

// validate checks what a checkpoint holds on its own: no negative offsets or times, cleaned
// ranges in order and not overlapping, at most maxCleanedRanges of them, none past first_dirty
// (a pass records its range and raises first_dirty together). Where it stands against the
// recovered log is clampTo's business.
func (ck *cleanerCheckpoint) validate() error {
	switch {
	case ck.FirstDirty < 0:
		return fmt.Errorf("negative first_dirty %d", ck.FirstDirty)
	case ck.GapsBelow < 0:
		return fmt.Errorf("negative gaps_below %d", ck.GapsBelow)
	case ck.TombstoneDeadline < 0:
		return fmt.Errorf("negative tombstone_deadline_ms %d", ck.TombstoneDeadline)
	case len(ck.Cleaned) > maxCleanedRanges:
		return fmt.Errorf("%d cleaned ranges, more than the %d kept", len(ck.Cleaned), maxCleanedRanges)
	}
	prev := int64(-1)
	for i, r := range ck.Cleaned {
		switch {
		case r.End < 0 || r.AtMs < 0:
			return fmt.Errorf("cleaned range %d: negative end %d or time %d", i, r.End, r.AtMs)
		case r.End <= prev:
			return fmt.Errorf("cleaned range %d ends at %d, not after the previous one (%d): unsorted or overlapping", i, r.End, prev)
		}
		prev = r.End
	}
	if prev > ck.FirstDirty {
		return fmt.Errorf("cleaned up to offset %d, but first_dirty is %d", prev, ck.FirstDirty)
	}
	return nil
}
