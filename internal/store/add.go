package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Progress counts an add's (or a verify's) work so far. An add calls its progress function
// at most every progressInterval, from one goroutine, and once more at the end with the
// final counts.
type Progress struct {
	Files, TotalFiles int64 // regular files done, of (a verify: stored files)
	Bytes, TotalBytes int64 // their content bytes (a verify: stored bytes)

	NewChunks, ReusedChunks int64 // chunks written, and chunks found already stored
	NewObjects              int64 // file and tree objects written
	StoredBytes             int64 // bytes written to the store (compressed)
}

// progressInterval is how often an add reports progress.
const progressInterval = 100 * time.Millisecond

// AddFile stores the content of the regular file at path (a symlink is followed) and
// returns its file object and ID. The content streams through a pipeline (chunking and the
// whole-file hash in this goroutine, hashing, compressing and writing chunks in parallel
// workers, behind a bounded queue), so memory stays bounded whatever the file's size.
// progress, if not nil, gets the content bytes done so far.
func (s *Store) AddFile(ctx context.Context, path string, progress func(bytes int64)) (ID, *FileObject, error) {
	var report func(Progress)
	if progress != nil {
		report = func(p Progress) { progress(p.Bytes) }
	}
	return s.addFile(ctx, path, report)
}

// Add stores a directory tree (AddTree) or a regular file (AddFile) and returns the ID of
// its tree or file object. A symlink given as path is followed.
func (s *Store) Add(ctx context.Context, path string, progress func(Progress)) (ID, error) {
	info, err := os.Stat(path)
	if err != nil {
		return ID{}, fmt.Errorf("add %s: %w", path, err)
	}
	if info.IsDir() {
		return s.AddTree(ctx, path, progress)
	}
	id, _, err := s.addFile(ctx, path, progress)
	return id, err
}

func (s *Store) addFile(ctx context.Context, path string, progress func(Progress)) (ID, *FileObject, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a FIFO must not hang the open
	if err != nil {
		return ID{}, nil, fmt.Errorf("add %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ID{}, nil, fmt.Errorf("add %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return ID{}, nil, fmt.Errorf("add %s: %s, not a regular file", path, describeType(info.Mode()))
	}
	a, err := s.newAdder(ctx, progress, 1, info.Size())
	if err != nil {
		return ID{}, nil, fmt.Errorf("add %s: %w", path, err)
	}
	var (
		id  ID
		obj *FileObject
	)
	a.run(func() error {
		return a.addFile(path, f, info, func(fid ID, fo *FileObject) { id, obj = fid, fo })
	})
	if err := a.finish(); err != nil {
		return ID{}, nil, err
	}
	return id, obj, nil
}

// AddTree stores the directory dir and everything below it, and returns the ID of its
// tree object. Regular files, directories and symlinks are stored with their permission
// bits (symlinks with mode 0); symlinks are stored, never followed. Anything else (a
// socket, a device, a FIFO) and any name that CheckName refuses make the whole add fail
// before anything is written, with an error listing them. Files are opened through an
// os.Root on dir, so nothing outside dir is read even if the tree changes meanwhile.
//
// Files stream through the same pipeline as AddFile, one after the other, with their
// chunks hashed, compressed and written in parallel; a tree object is written as soon as
// the last of its entries is stored (bottom-up). Memory stays bounded by the pipeline's
// queue plus, per directory being added, its entries.
func (s *Store) AddTree(ctx context.Context, dir string, progress func(Progress)) (ID, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return ID{}, fmt.Errorf("add %s: %w", dir, err)
	}
	defer root.Close()
	files, bytes, err := scanTree(ctx, root, dir)
	if err != nil {
		return ID{}, err
	}
	a, err := s.newAdder(ctx, progress, files, bytes)
	if err != nil {
		return ID{}, fmt.Errorf("add %s: %w", dir, err)
	}
	var id ID
	a.run(func() error {
		return a.addDir(root, dir, ".", func(tid ID) { id = tid })
	})
	if err := a.finish(); err != nil {
		return ID{}, err
	}
	return id, nil
}

// maxScanProblems is how many refused entries an error lists.
const maxScanProblems = 10

// scanTree counts the regular files below root and their bytes (for progress), and checks
// every entry's name and type first, so that a tree that cannot be stored is refused before
// anything is written.
func scanTree(ctx context.Context, root *os.Root, dir string) (files, bytes int64, err error) {
	var problems []string
	more := 0
	walkErr := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			if !d.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			return nil
		}
		problem := ""
		if err := CheckName(d.Name()); err != nil {
			problem = err.Error()
		} else if t := d.Type(); t&^(fs.ModeDir|fs.ModeSymlink) != 0 {
			problem = describeType(t) + ": only regular files, directories and symlinks can be stored"
		} else if t.IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += info.Size()
		}
		if problem != "" {
			if len(problems) < maxScanProblems {
				problems = append(problems, fmt.Sprintf("  %s: %s", filepath.Join(dir, p), problem))
			} else {
				more++
			}
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if walkErr != nil {
		return 0, 0, fmt.Errorf("add %s: %w", dir, walkErr)
	}
	if len(problems) > 0 {
		msg := fmt.Sprintf("add %s: %d entries cannot be stored:\n%s", dir, len(problems)+more, strings.Join(problems, "\n"))
		if more > 0 {
			msg += fmt.Sprintf("\n  and %d more", more)
		}
		return 0, 0, errors.New(msg)
	}
	return files, bytes, nil
}

// describeType names a file type for messages.
func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeDir != 0:
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "a file of unknown type"
}

// adder is one AddFile or AddTree: the walker (the calling goroutine) reads and chunks
// files and queues their chunks for the workers, which hash, compress and store them. A
// file's object is written by whoever completes its last chunk, and a directory's tree
// object by whoever completes its last entry, so the pipeline never waits for a file or a
// directory to end before starting the next.
type adder struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelCauseFunc

	jobs chan chunkJob
	bufs chan []byte // free chunk buffers: their number bounds memory
	wg   sync.WaitGroup
	dirs dirSet // directories written to, flushed once at the end

	errOnce sync.Once
	err     error

	release func() // of the store's shared lock

	progress                func(Progress)
	stopProgress            chan struct{}
	progressDone            chan struct{}
	totalFiles, totalBytes  int64
	files, bytes            atomic.Int64
	newChunks, reusedChunks atomic.Int64
	newObjects, stored      atomic.Int64
}

// chunkJob is one chunk for the workers: data is a buffer from adder.bufs.
type chunkJob struct {
	file  *pendingFile
	index int
	data  []byte
}

// pipelineWorkers is the number of workers of an add: twice the CPUs, so that the CPUs keep
// compressing while some workers wait for their fsync. The zstd encoder, shared, lets at
// most GOMAXPROCS of them compress at once.
func pipelineWorkers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

func (s *Store) newAdder(ctx context.Context, progress func(Progress), files, bytes int64) (*adder, error) {
	release, err := s.lock.shared()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	workers := pipelineWorkers()
	nbufs := 2 * workers
	a := &adder{
		s:          s,
		ctx:        ctx,
		cancel:     cancel,
		jobs:       make(chan chunkJob, nbufs),
		bufs:       make(chan []byte, nbufs),
		release:    release,
		progress:   progress,
		totalFiles: files,
		totalBytes: bytes,
	}
	for range nbufs {
		a.bufs <- nil // allocated on first use
	}
	for range workers {
		a.wg.Add(1)
		go a.worker()
	}
	if progress != nil {
		a.stopProgress = make(chan struct{})
		a.progressDone = make(chan struct{})
		go a.reportProgress()
	}
	return a, nil
}

// run runs the walker, then waits for the workers to drain the queue.
func (a *adder) run(walk func() error) {
	if err := walk(); err != nil {
		a.fail(err)
	}
	close(a.jobs)
	a.wg.Wait()
}

// finish ends the add: it flushes the directories written to, so that everything the
// returned ID names is durable, stops the progress reports and releases the lock.
func (a *adder) finish() error {
	defer a.release()
	defer a.cancel(nil)
	if a.err == nil {
		if err := a.ctx.Err(); err != nil {
			a.fail(context.Cause(a.ctx))
		}
	}
	if err := a.dirs.sync(); err != nil {
		a.fail(err)
	}
	if a.progress != nil {
		close(a.stopProgress)
		<-a.progressDone
		a.progress(a.snapshot())
	}
	return a.err
}

// fail records the add's first error and stops the pipeline.
func (a *adder) fail(err error) {
	a.errOnce.Do(func() {
		a.err = err
		a.cancel(err)
	})
}

func (a *adder) snapshot() Progress {
	return Progress{
		Files: a.files.Load(), TotalFiles: a.totalFiles,
		Bytes: a.bytes.Load(), TotalBytes: a.totalBytes,
		NewChunks: a.newChunks.Load(), ReusedChunks: a.reusedChunks.Load(),
		NewObjects: a.newObjects.Load(), StoredBytes: a.stored.Load(),
	}
}

func (a *adder) reportProgress() {
	defer close(a.progressDone)
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case <-a.stopProgress:
			return
		case <-tick.C:
			a.progress(a.snapshot())
		}
	}
}

func (a *adder) worker() {
	defer a.wg.Done()
	var scratch []byte // compressed chunks
	for job := range a.jobs {
		if a.ctx.Err() == nil {
			id := Sum(job.data)
			written, n, err := a.s.putBuf(chunksDir, id, job.data, nil, &scratch, &a.dirs, syncLater)
			if err != nil {
				a.fail(fmt.Errorf("add %s: %w", job.file.name, err))
			} else {
				if written {
					a.newChunks.Add(1)
					a.stored.Add(n)
				} else {
					a.reusedChunks.Add(1)
				}
				a.bytes.Add(int64(len(job.data)))
				job.file.chunkDone(job.index, id)
			}
		}
		a.bufs <- job.data
	}
}

// buffer returns a free chunk buffer of at least n bytes, waiting for one if all are in the
// queue.
func (a *adder) buffer(n int) ([]byte, error) {
	select {
	case b := <-a.bufs:
		if cap(b) < n {
			b = make([]byte, 0, max(n, DefaultParams.Max))
		}
		return b[:n], nil
	case <-a.ctx.Done():
		return nil, context.Cause(a.ctx)
	}
}

// putObject writes an object of the add.
func (a *adder) putObject(what string, obj Object) (ID, error) {
	encoded := obj.Encode()
	id := Sum(encoded)
	if len(encoded) > maxObjectSize {
		return id, fmt.Errorf("add %s: its object would be %d bytes, over the limit of %d", what, len(encoded), maxObjectSize)
	}
	written, n, err := a.s.putObject(id, encoded, &a.dirs, syncLater)
	if err != nil {
		return id, fmt.Errorf("add %s: %w", what, err)
	}
	if written {
		a.newObjects.Add(1)
		a.stored.Add(n)
	}
	return id, nil
}

// pendingFile is a file whose chunks are in the pipeline.
type pendingFile struct {
	a      *adder
	name   string // for messages
	onDone func(ID, *FileObject)

	mu      sync.Mutex
	obj     FileObject
	pending int  // chunks queued and not yet stored
	sealed  bool // all chunks queued; obj.Size and obj.SHA256 set
}

// addFile streams the regular file f (opened, with info from Stat) into the pipeline; onDone
// is called with its object once all its chunks are stored and the object written.
func (a *adder) addFile(name string, f *os.File, info fs.FileInfo, onDone func(ID, *FileObject)) error {
	p := &pendingFile{a: a, name: name, onDone: onDone}
	h := sha256.New()
	ch, err := NewChunker(io.TeeReader(f, h), DefaultParams)
	if err != nil {
		return err
	}
	var size int64
	for {
		data, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
		buf, err := a.buffer(len(data))
		if err != nil {
			return err
		}
		copy(buf, data)
		p.mu.Lock()
		index := len(p.obj.Chunks)
		p.obj.Chunks = append(p.obj.Chunks, ChunkRef{Length: uint32(len(data))})
		p.pending++
		p.mu.Unlock()
		select {
		case a.jobs <- chunkJob{file: p, index: index, data: buf}:
		case <-a.ctx.Done():
			return context.Cause(a.ctx)
		}
		size += int64(len(data))
	}
	// A file that changed while it was read would be stored as neither version.
	after, err := f.Stat()
	if err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	if size != info.Size() || after.Size() != info.Size() || !after.ModTime().Equal(info.ModTime()) {
		return fmt.Errorf("add %s: the file changed while it was being added; try again", name)
	}
	p.mu.Lock()
	p.obj.Size = size
	p.obj.SHA256 = ID(h.Sum(nil))
	p.sealed = true
	done := p.pending == 0
	p.mu.Unlock()
	if done {
		p.finish()
	}
	return nil
}

// chunkDone records a stored chunk, and finishes the file if it was the last.
func (p *pendingFile) chunkDone(index int, id ID) {
	p.mu.Lock()
	p.obj.Chunks[index].ID = id
	p.pending--
	done := p.sealed && p.pending == 0
	p.mu.Unlock()
	if done {
		p.finish()
	}
}

func (p *pendingFile) finish() {
	id, err := p.a.putObject(p.name, &p.obj)
	if err != nil {
		p.a.fail(err)
		return
	}
	p.a.files.Add(1)
	p.onDone(id, &p.obj)
}

// pendingDir is a directory whose entries are in the pipeline.
type pendingDir struct {
	a      *adder
	name   string
	onDone func(ID)

	mu      sync.Mutex
	tree    TreeObject
	pending int
	sealed  bool
}

// addDir adds the directory rel of root (dir on the host, for messages); onDone is called
// with its tree's ID once every entry below it is stored and the tree written.
func (a *adder) addDir(root *os.Root, dir, rel string, onDone func(ID)) error {
	name := filepath.Join(dir, rel)
	d, err := root.Open(rel)
	if err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	list, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	if len(list) > maxTreeEntries {
		return fmt.Errorf("add %s: %d entries, over the limit of %d", name, len(list), maxTreeEntries)
	}
	slices.SortFunc(list, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
	pd := &pendingDir{a: a, name: name, onDone: onDone}
	pd.tree.Entries = make([]Entry, len(list))
	pd.pending = len(list)
	for i, de := range list {
		if err := a.ctx.Err(); err != nil {
			return context.Cause(a.ctx)
		}
		if err := a.addEntry(root, dir, path.Join(rel, de.Name()), pd, i); err != nil {
			return err
		}
	}
	pd.mu.Lock()
	pd.sealed = true
	done := pd.pending == 0
	pd.mu.Unlock()
	if done {
		pd.finish()
	}
	return nil
}

// addEntry adds the entry rel of root as entry i of pd.
func (a *adder) addEntry(root *os.Root, dir, rel string, pd *pendingDir, i int) error {
	name := filepath.Join(dir, rel)
	info, err := root.Lstat(rel)
	if err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	e := &pd.tree.Entries[i] // written here only; read by finish after every entry is done
	e.Name = path.Base(rel)
	if err := CheckName(e.Name); err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	mode := info.Mode()
	switch {
	case mode.IsRegular():
		e.Kind, e.Mode = KindFile, ModeBits(mode)
		// O_NOFOLLOW: an entry swapped for a symlink since Lstat is refused, not followed;
		// O_NONBLOCK: one swapped for a FIFO does not hang the open (then Stat refuses it).
		f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
		defer f.Close()
		opened, err := f.Stat()
		if err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
		if !os.SameFile(info, opened) || !opened.Mode().IsRegular() {
			return fmt.Errorf("add %s: the file changed while it was being added; try again", name)
		}
		return a.addFile(name, f, opened, func(id ID, _ *FileObject) { pd.entryDone(i, id) })
	case mode.IsDir():
		e.Kind, e.Mode = KindDir, ModeBits(mode)
		return a.addDir(root, dir, rel, func(id ID) { pd.entryDone(i, id) })
	case mode&fs.ModeSymlink != 0:
		target, err := root.Readlink(rel)
		if err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
		if target == "" || len(target) > maxTargetLen {
			return fmt.Errorf("add %s: symlink target of %d bytes: at most %d", name, len(target), maxTargetLen)
		}
		e.Kind, e.Target = KindSymlink, target
		pd.entryDone(i, ID{})
		return nil
	}
	return fmt.Errorf("add %s: %s: only regular files, directories and symlinks can be stored", name, describeType(mode))
}

// entryDone records a stored entry, and finishes the directory if it was the last.
func (pd *pendingDir) entryDone(i int, id ID) {
	pd.mu.Lock()
	pd.tree.Entries[i].ID = id
	pd.pending--
	done := pd.sealed && pd.pending == 0
	pd.mu.Unlock()
	if done {
		pd.finish()
	}
}

func (pd *pendingDir) finish() {
	id, err := pd.a.putObject(pd.name, &pd.tree)
	if err != nil {
		pd.a.fail(err)
		return
	}
	pd.onDone(id)
}
