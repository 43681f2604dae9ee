// Command floor does the least work any configuration manager's no-op run over the shared
// "school server" workload must do: for every managed path in expected.json it lstats the
// path and, for a regular file, reads the whole content and SHA-256-hashes it. It compares
// type, mode and hash with expected.json and reports the differences.
//
// It parses no configuration language, gathers no facts, writes nothing and runs no
// command, so its wall time is a lower bound for a no-op run on the same tree.
//
// usage: floor EXPECTED.json ROOT
// Exit status: 0 when the tree matches, 1 when something differs, 2 on a usage error.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

type entry struct {
	T      string `json:"t"` // "d", "f" or "log" (a file whose content is checked elsewhere)
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: floor EXPECTED.json ROOT")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	var expected map[string]entry
	if err := json.Unmarshal(data, &expected); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", os.Args[1], err)
		os.Exit(2)
	}
	paths := make([]string, 0, len(expected))
	for p := range expected {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	root := os.Args[2]
	buf := make([]byte, 256<<10)
	h := sha256.New()
	var files, dirs, differ int
	var bytes int64
	for _, p := range paths {
		e := expected[p]
		full := filepath.Join(root, p)
		info, err := os.Lstat(full)
		if err != nil {
			differ++
			fmt.Println("differs:", p, err)
			continue
		}
		mode := fmt.Sprintf("%04o", info.Mode().Perm())
		switch {
		case info.IsDir():
			dirs++
			if e.T != "d" || mode != e.Mode {
				differ++
				fmt.Println("differs:", p, "directory", mode)
			}
		case info.Mode().IsRegular():
			files++
			f, err := os.Open(full)
			if err != nil {
				differ++
				fmt.Println("differs:", p, err)
				continue
			}
			h.Reset()
			n, err := io.CopyBuffer(h, f, buf)
			f.Close()
			bytes += n
			sum := hex.EncodeToString(h.Sum(nil))
			if err != nil {
				differ++
				fmt.Println("differs:", p, err)
			} else if e.T == "f" && (mode != e.Mode || sum != e.SHA256) {
				differ++
				fmt.Println("differs:", p, mode, sum[:12])
			} else if e.T != "f" && e.T != "log" {
				differ++
				fmt.Println("differs:", p, "file")
			}
		default:
			differ++
			fmt.Println("differs:", p, info.Mode().Type())
		}
	}
	fmt.Printf("floor: %d paths (%d dirs, %d files, %d bytes hashed), %d differ\n", len(paths), dirs, files, bytes, differ)
	if differ > 0 {
		os.Exit(1)
	}
}
