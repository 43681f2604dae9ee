package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/satchelcm/satchel/internal/store"
	"github.com/satchelcm/satchel/internal/transfer"
)

// dirOrDefault returns the store directory that --store names, or the default one, without
// opening it (a store served may be on a read-only medium).
func (f *storeFlags) dirOrDefault() string {
	if f.dir != "" {
		return f.dir
	}
	return filepath.Join(stateDir("", "/"), "store")
}

func newStoreServe(s *streams, f *storeFlags) *cobra.Command {
	var listen, addrFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the store read-only over HTTP, for store pull on other nodes",
		Long: `Serve the store's chunks, objects and deltas over HTTP, read-only (GET and HEAD, with
byte ranges and cache headers), until interrupted (SIGINT or SIGTERM). Nothing else in the
directory is served: no listing, no lock, no quarantine. Any static file server (nginx, a
CDN, a mirror) serving the same directory does as well; this one needs no configuration.`,
		Args: wantArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(f.dirOrDefault())
			if err != nil {
				return fail("serve: %v", err)
			}
			if info, err := os.Stat(filepath.Join(dir, "objects")); err != nil || !info.IsDir() {
				return fail("serve: %s is not a store (it has no objects/ directory)", dir)
			}
			h, err := transfer.NewHandler(dir)
			if err != nil {
				return fail("%v", err)
			}
			defer func() { _ = h.Close() }()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fail("serve: %v", err)
			}
			addr := ln.Addr().String()
			if addrFile != "" {
				if err := writeAddrFile(addrFile, addr); err != nil {
					_ = ln.Close()
					return fail("serve: --addr-file: %v", err)
				}
			}
			ctx, stop := interruptible()
			defer stop()
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			fmt.Fprintf(s.stderr, "serving store %s on http://%s/\n", dir, addr)
			select {
			case err := <-served:
				return fail("serve: %v", err)
			case <-ctx.Done():
			}
			// Let the responses under way finish, for a while.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "listen on this `ADDRESS` (HOST:PORT; port 0 picks a free one)")
	cmd.Flags().StringVar(&addrFile, "addr-file", "", "once listening, write the address (HOST:PORT) to this `FILE`")
	return cmd
}

// writeAddrFile writes addr to p atomically, so that a reader never sees half of it.
func writeAddrFile(p, addr string) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func newStorePull(s *streams, f *storeFlags) *cobra.Command {
	var have []string
	var nStreams int
	var limit string
	cmd := &cobra.Command{
		Use:   "pull URL ID",
		Short: "Fetch a tree or file from a served store: only what this store lacks",
		Long: `Fetch the tree or file ID, and everything it reaches, from the store served at URL (by
satchel store serve, or any static HTTP server of a store's directory) into this store.
Only what this store lacks is fetched: through a precomputed delta from a root given with
--have if the server has one, else the delta from nothing, else object by object and chunk
by chunk. Everything received is verified before it is stored, and stays stored: after an
interruption or a cut, pulling again fetches only the rest.

--limit caps the bandwidth in bytes per second: a number with an optional binary suffix
k, M or G (1k = 1024), such as 256k or 2M; 0 for no cap.`,
		Args: wantArgs(2, "the store's URL and an ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := transfer.NewClient(args[0])
			if err != nil {
				return &usageError{err}
			}
			id, err := parseIDArg(args[1])
			if err != nil {
				return err
			}
			haves, err := parseIDList(have)
			if err != nil {
				return err
			}
			if nStreams < 1 || nStreams > 64 {
				return &usageError{fmt.Errorf("--streams %d: want 1 to 64", nStreams)}
			}
			if limit != "" {
				if c.Limit, err = parseRate(limit); err != nil {
					return &usageError{err}
				}
			}
			c.Streams = nStreams
			st, err := f.open()
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			show := newLineProgress(s.stderr)
			c.Progress = func(p transfer.Progress) {
				planned := ""
				if p.PlannedBytes > 0 {
					planned = " of " + humanBytes(p.PlannedBytes) + " planned"
				}
				show.set(fmt.Sprintf("pulling: %s, %s, %s; %s received%s", count(p.Payloads, "payload"),
					count(p.Objects, "object"), count(p.Chunks, "chunk"), humanBytes(p.BodyBytes), planned))
			}
			wipe := ""
			if out, ok := s.stderr.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
				wipe = "\r\033[K" // over the progress line
			}
			c.Warn = func(msg string) { fmt.Fprintf(s.stderr, "%ssatchel: warning: %s\n", wipe, msg) }
			stats, err := c.Pull(ctx, st, id, haves)
			show.done()
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(s.stderr, pullSummary(id, c.BaseURL.Redacted(), stats))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&have, "have", nil, "a root `ID` this store holds, to fetch a delta from (repeatable, or comma-separated)")
	cmd.Flags().IntVar(&nStreams, "streams", 4, "send up to `N` requests at once")
	cmd.Flags().StringVar(&limit, "limit", "", "cap the bandwidth to `RATE` bytes per second (256k, 2M; default: no cap)")
	return cmd
}

// pullSummary is the line that ends a pull: "pulled ID from URL: 1,234 payloads via the
// delta from 0123456789ab, 12 objects and 3 chunks singly; 4.1 MiB in 9 requests, 2.3s".
func pullSummary(id store.ID, url string, st transfer.Stats) string {
	if st.Requests == 0 {
		return fmt.Sprintf("nothing to pull: %s is complete in the store", id)
	}
	var what []string
	if st.Delta {
		from := "the full delta"
		if !st.From.IsZero() {
			from = "the delta from " + st.From.String()[:12]
		}
		what = append(what, count(st.Payloads, "payload")+" via "+from)
	}
	if st.Objects+st.Chunks > 0 || !st.Delta {
		what = append(what, count(st.Objects, "object")+" and "+count(st.Chunks, "chunk")+" singly")
	}
	line := fmt.Sprintf("pulled %s from %s: %s; %s in %s", id, url, strings.Join(what, ", "),
		humanBytes(st.BodyBytes), count(st.Requests, "request"))
	if st.Retries > 0 {
		line += fmt.Sprintf(" (%s)", count(st.Retries, "retry"))
	}
	if st.Refused > 0 {
		line += fmt.Sprintf(", %s refused as corrupt", count(st.Refused, "file"))
	}
	return line + fmt.Sprintf(", %.1fs", st.Duration.Seconds())
}

// count is plural with thousands separators: "1 chunk", "1,234 payloads", "2 retries".
func count(n int, word string) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	switch {
	case n == 1:
		return s + " " + word
	case strings.HasSuffix(word, "y"):
		return s + " " + word[:len(word)-1] + "ies"
	}
	return s + " " + word + "s"
}

var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([kKmMgG]?)$`)

// parseRate parses a bandwidth in bytes per second: 500, 256k, 1.5M, 2G (binary: 1k =
// 1024); 0 means no cap.
func parseRate(s string) (int64, error) {
	m := rateRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("--limit %q: want bytes per second, such as 500, 256k or 2M", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("--limit %q: %w", s, err)
	}
	switch strings.ToLower(m[2]) {
	case "k":
		v *= 1 << 10
	case "m":
		v *= 1 << 20
	case "g":
		v *= 1 << 30
	}
	if v != 0 && v < 1 || v > 1<<50 {
		return 0, errors.New("--limit " + s + ": out of range")
	}
	return int64(v), nil
}
