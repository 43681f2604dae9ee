package backup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxLine bounds one index line; longer lines (garbage) are skipped without being buffered.
const maxLine = 1 << 20

// readIndex returns the valid entries of the index in file order, and how many lines it skipped
// (torn, damaged or duplicate). A missing index is an empty store.
func (s *Store) readIndex() ([]Entry, int, error) {
	f, err := os.Open(s.indexPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var (
		entries []Entry
		bad     int
		seen    = make(map[string]bool)
	)
	err = scanLines(f, func(line []byte) {
		e, ok := parseEntry(line)
		if !ok || seen[e.ID] {
			bad++
			return
		}
		seen[e.ID] = true
		entries = append(entries, e)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", s.indexPath(), err)
	}
	return entries, bad, nil
}

// scanLines calls fn for each line of r (without its newline, the last one possibly
// unterminated). Lines longer than maxLine are passed as nil, not buffered.
func scanLines(r io.Reader, fn func(line []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		long    []byte // a line longer than the buffer, being assembled
		tooLong bool   // the current line exceeds maxLine
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !tooLong && len(long)+len(chunk) <= maxLine {
				long = append(long, chunk...)
			} else {
				tooLong, long = true, long[:0]
			}
			continue
		}
		line := chunk
		if tooLong {
			line = nil
		} else if len(long) > 0 {
			long = append(long, chunk...)
			line = long
		}
		if err == nil || len(line) > 0 || tooLong {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			if len(line) > maxLine {
				line = nil
			}
			fn(line)
		}
		long, tooLong = long[:0], false
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parseEntry decodes one index line and checks that it is a usable entry.
func parseEntry(line []byte) (Entry, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return Entry{}, false
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return Entry{}, false
	}
	if len(e.ID) < MinPrefix || checkPath(e.Path) != nil || !validSum(e.SHA256) ||
		e.Size < 0 || e.Mode&^0o7777 != 0 || e.Time.IsZero() {
		return Entry{}, false
	}
	e.Time = e.Time.UTC()
	return e, true
}

// appendIndex appends one entry to the index and fsyncs it. The caller holds the lock.
func (s *Store) appendIndex(e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	p := s.indexPath()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := fi.Size()
	if size > 0 {
		// A power cut during an earlier append may have left a torn last line: end it, so
		// that this entry starts on a line of its own.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			f.Close()
			return fmt.Errorf("read %s: %w", p, err)
		}
		if last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// Best effort: do not leave a partial line behind (readers would skip it anyway).
		_ = f.Truncate(size)
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if size == 0 {
		// The file may be new: make its directory entry durable too.
		return syncDir(s.dir)
	}
	return nil
}

// rewriteIndex atomically replaces the index with these entries. The caller holds the lock.
func (s *Store) rewriteIndex(entries []Entry) error {
	f, err := os.CreateTemp(s.dir, "index.jsonl.tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			_ = os.Remove(tmp)
		}
	}()
	w := bufio.NewWriter(f)
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, _ = w.Write(line) // a bufio.Writer reports errors at Flush
		_ = w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.indexPath()); err != nil {
		return err
	}
	ok = true
	return syncDir(filepath.Dir(s.indexPath()))
}
