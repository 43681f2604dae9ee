package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The format's fixed vectors: these bytes and IDs must never change. If this test fails,
// the encoding changed and every stored ID with it.
const (
	vecContent = "hello, satchel\n"
	vecChunkID = "bf55b3a95fcb18fff9c56ad87d572576fc8f9c2305be485ddcba8cf5a4552083"
	vecFile    = "5346010f" + vecChunkID + "01" + vecChunkID + "0f"
	vecFileID  = "95c66c295a580526f7059e3e1aaa06dfe98a2279ee41eb25f8e8df1b0d02ac17"

	vecEmptyTree   = "53540100"
	vecEmptyTreeID = "1049b7277945493d08b6b262cca3d48768eb756cb1e43cddd49e51d28bb2d40c"

	// bin/ (0755, the empty tree), hello.txt (0644), latest -> hello.txt, run (04750).
	vecTree = "53540104" +
		"0362696e" + "64" + "ed03" + vecEmptyTreeID +
		"0968656c6c6f2e747874" + "66" + "a403" + vecFileID +
		"066c6174657374" + "6c" + "00" + "0968656c6c6f2e747874" +
		"0372756e" + "66" + "e813" + vecFileID
	vecTreeID = "6c14706e7be96ad650201cb3b04841291efe09fb3718ce89d52b7e8129d8c676"
)

func mustID(t testing.TB, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorFile(t testing.TB) *FileObject {
	id := mustID(t, vecChunkID)
	return &FileObject{Size: int64(len(vecContent)), SHA256: id, Chunks: []ChunkRef{{ID: id, Length: uint32(len(vecContent))}}}
}

func vectorTree(t testing.TB) *TreeObject {
	return &TreeObject{Entries: []Entry{
		{Name: "bin", Kind: KindDir, Mode: 0o755, ID: mustID(t, vecEmptyTreeID)},
		{Name: "hello.txt", Kind: KindFile, Mode: 0o644, ID: mustID(t, vecFileID)},
		{Name: "latest", Kind: KindSymlink, Target: "hello.txt"},
		{Name: "run", Kind: KindFile, Mode: 0o4750, ID: mustID(t, vecFileID)},
	}}
}

func TestVectors(t *testing.T) {
	t.Parallel()
	if got := Sum([]byte(vecContent)).String(); got != vecChunkID {
		t.Errorf("chunk ID = %s, want %s", got, vecChunkID)
	}
	for _, tc := range []struct {
		name    string
		obj     Object
		enc, id string
	}{
		{"file", vectorFile(t), vecFile, vecFileID},
		{"empty tree", &TreeObject{}, vecEmptyTree, vecEmptyTreeID},
		{"tree", vectorTree(t), vecTree, vecTreeID},
	} {
		enc := tc.obj.Encode()
		if got := hex.EncodeToString(enc); got != tc.enc {
			t.Errorf("%s: encoding\n got %s\nwant %s", tc.name, got, tc.enc)
		}
		if got := Sum(enc).String(); got != tc.id {
			t.Errorf("%s: ID = %s, want %s", tc.name, got, tc.id)
		}
		dec, err := decodeObject(unhex(t, tc.enc))
		if err != nil {
			t.Errorf("%s: decode: %v", tc.name, err)
			continue
		}
		if !bytes.Equal(dec.Encode(), enc) {
			t.Errorf("%s: decode and re-encode changed the bytes", tc.name)
		}
	}
}

// TestDecodeRefusesNonCanonical: every encoding but the one canonical encoding of a valid
// object is refused, so that equal objects have equal IDs and a tree cannot smuggle a path.
func TestDecodeRefusesNonCanonical(t *testing.T) {
	t.Parallel()
	chunk := vecChunkID
	tree := func(entries ...string) string {
		return "5354010" + string(rune('0'+len(entries))) + strings.Join(entries, "")
	}
	file := func(name string) string {
		return hex.EncodeToString([]byte{byte(len(name))}) + hex.EncodeToString([]byte(name)) + "66a403" + vecFileID
	}
	for _, tc := range []struct {
		name, kind, hex, want string
	}{
		{"file: trailing byte", "file", vecFile + "00", "after the end"},
		{"file: over-long size varint", "file", "534601" + "8f00" + chunk + "01" + chunk + "0f", "not minimally encoded"},
		{"file: over-long count varint", "file", "5346010f" + chunk + "8100" + chunk + "0f", "not minimally encoded"},
		{"file: over-long length varint", "file", "5346010f" + chunk + "01" + chunk + "8f00", "not minimally encoded"},
		{"file: chunks add up to less", "file", "5346010f" + chunk + "01" + chunk + "0e", "add up to 14"},
		{"file: chunks add up to more", "file", "5346010e" + chunk + "01" + chunk + "0f", "add up to 15"},
		{"file: empty chunk", "file", "53460100" + chunk + "01" + chunk + "00", "empty"},
		{"file: chunk over the limit", "file", "534601" + "8080808001" + chunk + "01" + chunk + "8080808001", "exceeds"},
		{"file: count beyond the data", "file", "5346010f" + chunk + "05" + chunk + "0f", "exceeds"},
		{"file: truncated chunk list", "file", "5346011e" + chunk + "02" + chunk + "0f" + chunk[:40], "truncated"},
		{"file: wrong magic", "file", "53460200" + chunk + "00", "not a file"},
		{"file: a tree", "file", vecEmptyTree, "not a file"},
		{"tree: trailing byte", "tree", vecEmptyTree + "00", "after the end"},
		{"tree: over-long count", "tree", "5354018000", "not minimally encoded"},
		{"tree: unsorted", "tree", tree(file("b"), file("a")), "sorted"},
		{"tree: duplicate", "tree", tree(file("a"), file("a")), "sorted"},
		{"tree: dot-dot", "tree", tree(file("..")), "not allowed"},
		{"tree: dot", "tree", tree(file(".")), "not allowed"},
		{"tree: empty name", "tree", tree(file("")), "not allowed"},
		{"tree: slash", "tree", tree(file("a/b")), "contains /"},
		{"tree: NUL", "tree", tree(file("a\x00b")), "control character"},
		{"tree: newline", "tree", tree(file("a\nb")), "control character"},
		{"tree: escape", "tree", tree(file("a\x1b[2Jb")), "control character"},
		{"tree: C1 control", "tree", tree(file("a\u009bb")), "control character"},
		{"tree: not UTF-8", "tree", tree(file("a\xffb")), "not UTF-8"},
		{"tree: mode over 0o7777", "tree", tree("0161" + "66" + "8020" + vecFileID), "exceeds"},
		{"tree: over-long mode", "tree", tree("0161" + "66" + "a48300" + vecFileID), "not minimally encoded"},
		{"tree: unknown kind", "tree", tree("0161" + "78" + "a403" + vecFileID), "unknown kind"},
		{"tree: empty link target", "tree", tree("0161" + "6c" + "00" + "00"), "bad link target"},
		{"tree: NUL in link target", "tree", tree("0161" + "6c" + "00" + "02" + "6100"), "bad link target"},
		{"tree: name over 255 bytes", "tree", "53540101" + "8002" + strings.Repeat("61", 256) + "66a403" + vecFileID, "exceeds"},
		{"tree: a file", "tree", vecFile, "not a tree"},
	} {
		b := unhex(t, tc.hex)
		var err error
		if tc.kind == "file" {
			_, err = DecodeFile(b)
		} else {
			_, err = DecodeTree(b)
		}
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrMalformed mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestDecodeRefusesPrefixes: every proper prefix of a valid encoding is refused.
func TestDecodeRefusesPrefixes(t *testing.T) {
	t.Parallel()
	for _, enc := range [][]byte{unhex(t, vecFile), unhex(t, vecTree)} {
		for n := range len(enc) {
			if _, err := decodeObject(enc[:n]); err == nil {
				t.Errorf("prefix of %d of %d bytes decoded", n, len(enc))
			}
		}
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "...", ".hidden", "é t\u00e9", "日本語", "a b", strings.Repeat("x", 255)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/", "a\x00", "a\n", "\r", "\t", "a\x7f", "\u0085", strings.Repeat("x", 256), "\xc3"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil", bad)
		}
	}
}

func FuzzDecodeFile(f *testing.F) {
	f.Add(unhex(f, vecFile))
	f.Add((&FileObject{}).Encode())
	f.Add(unhex(f, "5346010f"+vecChunkID+"02"+vecChunkID+"07"+vecChunkID+"08"))
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := DecodeFile(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if enc := obj.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("decoded and re-encoded differently:\n in %x\nout %x", b, enc)
		}
	})
}

func FuzzDecodeTree(f *testing.F) {
	f.Add(unhex(f, vecTree))
	f.Add(unhex(f, vecEmptyTree))
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := DecodeTree(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if enc := obj.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("decoded and re-encoded differently:\n in %x\nout %x", b, enc)
		}
		for _, e := range obj.Entries {
			if err := CheckName(e.Name); err != nil {
				t.Fatalf("decoded a bad name: %v", err)
			}
		}
	})
}
