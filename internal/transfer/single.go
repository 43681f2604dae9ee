package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/satchelcm/satchel/internal/store"
)

// Limits of the single phase.
const (
	// maxCorrupt is how many times a file that arrives corrupt is fetched (the later times
	// asking caches to revalidate) before the pull reports it.
	maxCorrupt = 3
	// maxFailures: after this many files that could not be fetched (404, 403, corrupt), the
	// pull stops trying the others: the server is not the right one.
	maxFailures = 16
	// Stored files are at most this large (store.read's bound: zstd's worst case over the
	// largest chunk or object).
	maxChunkFile  = store.MaxChunkSize + store.MaxChunkSize/64 + 1024
	maxObjectFile = 1<<30 + 1<<30/64 + 1024
)

// item is a file to fetch: an object or a chunk.
type item struct {
	id     store.ID
	object bool
}

func (it item) kind() string {
	if it.object {
		return "object"
	}
	return "chunk"
}

func (it item) path() string {
	dir := "chunks"
	if it.object {
		dir = "objects"
	}
	hex := it.id.String()
	return dir + "/" + hex[:2] + "/" + hex + ".zst"
}

// singles fetches files one by one, Streams at a time, walking down from the root: once an
// object is stored, what it refers to and the store lacks is queued.
type singles struct {
	p *pull

	mu       sync.Mutex
	cond     *sync.Cond
	objects  []item // queued, fetched before chunks: they reveal more to fetch
	chunks   []item
	seen     map[item]bool
	busy     int     // items being fetched
	failures []error // files that could not be fetched
	fatal    error   // stops everything
}

// singly fetches file by file whatever s still lacks of the root, then checks that nothing
// is missing.
func (p *pull) singly(ctx context.Context) error {
	q := &singles{p: p, seen: map[item]bool{}}
	q.cond = sync.NewCond(&q.mu)
	for {
		objects, chunks, err := p.s.Missing(ctx, p.to)
		if err != nil {
			return err
		}
		if len(objects)+len(chunks) == 0 {
			return nil
		}
		queued := q.queueAll(objects, chunks)
		if queued == 0 || q.tooManyFailures() {
			return q.missingError(len(objects), len(chunks))
		}
		if err := q.run(ctx); err != nil {
			return err
		}
	}
}

// queueAll queues the files not tried yet and returns how many.
func (q *singles) queueAll(objects, chunks []store.ID) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, id := range objects {
		n += q.push(item{id: id, object: true})
	}
	for _, id := range chunks {
		n += q.push(item{id: id})
	}
	return n
}

// push queues it unless it was seen; q.mu is held.
func (q *singles) push(it item) int {
	if q.seen[it] {
		return 0
	}
	q.seen[it] = true
	if it.object {
		q.objects = append(q.objects, it)
	} else {
		q.chunks = append(q.chunks, it)
	}
	q.cond.Signal()
	return 1
}

func (q *singles) tooManyFailures() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.failures) >= maxFailures
}

// run fetches the queue empty with Streams workers.
func (q *singles) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.cond.Broadcast()
	})
	defer stop()
	var wg sync.WaitGroup
	for range q.p.c.Streams {
		wg.Go(func() {
			for {
				it, ok := q.pop(ctx)
				if !ok {
					return
				}
				failure, fatal := q.fetch(ctx, it)
				var children []item
				if failure == nil && fatal == nil && it.object {
					children, fatal = q.children(it.id)
				}
				q.done(children, failure, fatal)
				if fatal != nil {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if q.fatal != nil {
		return q.fatal
	}
	return ctx.Err()
}

// pop returns the next file to fetch, waiting while the queue is empty but others are
// being fetched (they may queue more); false when all is done or the run is stopping.
func (q *singles) pop(ctx context.Context) (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if ctx.Err() != nil || q.fatal != nil || len(q.failures) >= maxFailures {
			return item{}, false
		}
		var it item
		switch {
		case len(q.objects) > 0:
			it, q.objects = q.objects[0], q.objects[1:]
		case len(q.chunks) > 0:
			it, q.chunks = q.chunks[0], q.chunks[1:]
		case q.busy == 0:
			return item{}, false
		default:
			q.cond.Wait()
			continue
		}
		q.busy++
		return it, true
	}
}

// done ends the fetch of one file: queues what it refers to, records a failure.
func (q *singles) done(children []item, failure, fatal error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.busy--
	for _, c := range children {
		q.push(c)
	}
	if failure != nil {
		q.failures = append(q.failures, failure)
	}
	if fatal != nil && q.fatal == nil {
		q.fatal = fatal
	}
	q.cond.Broadcast()
}

// children returns what the stored object id refers to that the store lacks.
func (q *singles) children(id store.ID) ([]item, error) {
	s := q.p.s
	obj, err := s.Object(id)
	if err != nil {
		return nil, err
	}
	var out []item
	switch o := obj.(type) {
	case *store.TreeObject:
		for _, e := range o.Entries {
			if (e.Kind == store.KindFile || e.Kind == store.KindDir) && !s.HasObject(e.ID) {
				out = append(out, item{id: e.ID, object: true})
			}
		}
	case *store.FileObject:
		for _, c := range o.Chunks {
			if !s.HasChunk(c.ID) {
				out = append(out, item{id: c.ID})
			}
		}
	}
	return out, nil
}

// fetch fetches and stores one file. failure: this file could not be had (absent, refused,
// corrupt every time); fatal: the pull cannot go on (the link is gone, the store cannot be
// written, the context ended).
func (q *singles) fetch(ctx context.Context, it item) (failure, fatal error) {
	p := q.p
	limit := int64(maxChunkFile)
	if it.object {
		limit = maxObjectFile
	}
	for try := 1; ; try++ {
		var z []byte
		var u string
		err := p.retry(ctx, it.kind()+" "+it.id.String(), func() error {
			resp, err := p.get(ctx, it.path(), nil, try > 1)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			u = resp.url
			if resp.StatusCode != 200 {
				return permanent(fmt.Errorf("GET %s: %s to a request without Range", u, printable(resp.Status)))
			}
			z, err = readBody(resp, limit)
			return err
		})
		if err != nil {
			if isPermanent(err) && ctx.Err() == nil {
				return fmt.Errorf("%s %s: %w", it.kind(), it.id, err), nil
			}
			return nil, err
		}
		if it.object {
			err = p.s.PutObjectCompressed(it.id, z)
		} else {
			err = p.s.PutChunkCompressed(it.id, z)
		}
		switch {
		case err == nil:
			if it.object {
				p.stored(&p.objects)
			} else {
				p.stored(&p.chunks)
			}
			return nil, nil
		case !errors.Is(err, store.ErrCorrupt):
			return nil, err
		}
		p.refused.Add(1)
		if try >= maxCorrupt {
			return fmt.Errorf("%s %s from %s: corrupt %d times: %w", it.kind(), it.id, u, try, err), nil
		}
		p.warn(fmt.Sprintf("%s from %s: %v; fetching it again", it.kind(), u, err))
		if err := sleep(ctx, p.backoff(try)); err != nil {
			return nil, err
		}
	}
}

// missingError says what is still missing, and why.
func (q *singles) missingError(objects, chunks int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var what []string
	if objects > 0 {
		what = append(what, plural(objects, "object"))
	}
	if chunks > 0 {
		what = append(what, plural(chunks, "chunk"))
	}
	msg := strings.Join(what, " and ") + " still missing"
	switch {
	case objects == 1:
		msg += ", with what it refers to"
	case objects > 1:
		msg += ", with what they refer to"
	}
	if len(q.failures) == 0 {
		return errors.New(msg)
	}
	const show = 3
	var why []string
	for _, f := range q.failures[:min(show, len(q.failures))] {
		why = append(why, f.Error())
	}
	if len(q.failures) > show {
		why = append(why, fmt.Sprintf("and %d more", len(q.failures)-show))
	}
	if len(q.failures) >= maxFailures {
		msg += fmt.Sprintf(" (stopped after %d failures)", len(q.failures))
	}
	return fmt.Errorf("%s: %s", msg, strings.Join(why, "; "))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
