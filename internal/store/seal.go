package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A stored file is one zstd frame holding the content, followed by a seal: a zstd skippable
// frame holding the CRC-32C of the bytes before it.
//
//	zstd frame | 53 2a 4d 18 (skippable frame magic 0x184D2A53) | 04 00 00 00 | CRC-32C, LE
//
// The content's SHA-256 already proves the content, but not the stored bytes: zstd frames
// have bits that do not change what they decode to (a window size, a spare bit of an
// entropy table), and a flipped bit there is still a sign of a failing disk or a damaged
// copy. The seal makes every single changed byte of a stored file detectable, for 12 bytes
// per file. Any zstd decoder skips it: `zstd -d` still decompresses a stored file.
const (
	sealMagic = 0x184D2A53
	sealSize  = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seal appends the seal to a zstd frame.
func seal(frame []byte) []byte {
	crc := crc32.Checksum(frame, castagnoli)
	frame = binary.LittleEndian.AppendUint32(frame, sealMagic)
	frame = binary.LittleEndian.AppendUint32(frame, 4)
	return binary.LittleEndian.AppendUint32(frame, crc)
}

// unseal checks a stored file's seal and returns the frame before it.
func unseal(b []byte) ([]byte, error) {
	if len(b) < sealSize {
		return nil, fmt.Errorf("%d bytes: too short", len(b))
	}
	frame, tail := b[:len(b)-sealSize], b[len(b)-sealSize:]
	if binary.LittleEndian.Uint32(tail) != sealMagic || binary.LittleEndian.Uint32(tail[4:]) != 4 {
		return nil, errors.New("no seal at the end: truncated or damaged")
	}
	if got, want := crc32.Checksum(frame, castagnoli), binary.LittleEndian.Uint32(tail[8:]); got != want {
		return nil, fmt.Errorf("stored bytes damaged: CRC-32C %08x, sealed %08x", got, want)
	}
	return frame, nil
}
