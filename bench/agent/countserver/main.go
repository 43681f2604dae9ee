// Command countserver serves a directory as any static file server would (net/http's
// FileServer: Last-Modified, If-Modified-Since and Range handled; with -etag also a strong
// ETag and If-None-Match, as nginx does by default), over plain HTTP/1.1 or, with
// -tls-ca, over HTTPS, and counts what each request costs on the wire.
//
// Every TCP connection is wrapped so that the bytes read from and written to the socket
// are counted exactly (TLS records included, TCP/IP headers not). A request's response
// bytes are those written from the end of the previous request on the connection (or its
// opening) to the moment the connection goes idle (or closes) after it; its request bytes
// are those read over the same span. With a client that does not pipeline (Go's does not)
// that is exact: headers, body, framing, and, for the first request of a TLS connection,
// the handshake. The body bytes are counted separately, as the handler writes them, so
// headers = wire - body for a plain HTTP request.
//
// usage: countserver [-addr 127.0.0.1:0] [-tls-ca CA.pem] [-etag] [-idle-timeout D] -log FILE -ready FILE DIR
//
// -etag sends, with every regular file, the ETag nginx sends by default: the file's
// modification time (Unix seconds) and size in hexadecimal, "<mtime>-<size>", a strong
// validator (If-None-Match is then answered before If-Modified-Since, as RFC 9110 says).
// Errors (404) carry none, as with nginx.
//
// -idle-timeout closes a keep-alive connection that has been idle that long (0, the
// default: never), as any production server does (nginx after 75 s, Apache after 5 s).
//
// The log gets one tab-separated line per request, written when its response is done:
//
//	conn method path status body_bytes resp_wire_bytes req_wire_bytes conditional user_agent tls
//
// conditional is "ims" (If-Modified-Since), "inm" (If-None-Match), "ims+inm" or "-"; tls
// is the connection's handshake, "full" or "resumed" (a TLS session resumed), or "-" for
// plain HTTP. Bytes
// that cross a connection after its last response (a TLS close_notify) are logged as a
// line with method "-" and path "(close)".
//
// With -tls-ca the server makes a throwaway PKI like a public one: a root CA, an
// intermediate CA and a leaf for 127.0.0.1, all RSA-2048 (as Let's Encrypt's R10/R11
// chains are), serves the leaf and the intermediate, and writes the root to CA.pem (point
// a Go client at it with SSL_CERT_FILE=CA.pem).
//
// When the server listens, it writes its address (host:port) to the ready file. It stops
// on SIGTERM or SIGINT.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// countingConn counts the bytes read from and written to one TCP connection, and holds
// the request being served on it.
type countingConn struct {
	net.Conn
	id       int64
	rx, tx   atomic.Int64
	mu       sync.Mutex
	pending  *record // the request just served, logged when the connection goes idle or closes
	rx0, tx0 int64   // the counters when the previous request was logged
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rx.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.tx.Add(int64(n))
	return n, err
}

type record struct {
	method, path, cond, agent, tls string
	status                         int
	body                           int64
}

type listener struct {
	net.Listener
	next atomic.Int64
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, id: l.next.Add(1)}, nil
}

// counted returns the counting connection under c (a TLS connection's included).
func counted(c net.Conn) *countingConn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	cc, _ := c.(*countingConn)
	return cc
}

// bodyWriter counts the body bytes the handler writes and remembers the status.
type bodyWriter struct {
	http.ResponseWriter
	status int
	body   int64
}

func (w *bodyWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *bodyWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.body += int64(n)
	return n, err
}

type connKey struct{}

type logger struct {
	mu sync.Mutex
	f  *os.File
}

// done logs the request pending on c with the bytes counted since the previous one; with
// no request pending, it logs the bytes left over, if any (closing is true then).
func (lg *logger) done(c *countingConn, closing bool) {
	c.mu.Lock()
	r := c.pending
	c.pending = nil
	rx, tx := c.rx.Load(), c.tx.Load()
	req, resp := rx-c.rx0, tx-c.tx0
	if r != nil || closing {
		c.rx0, c.tx0 = rx, tx
	}
	c.mu.Unlock()
	if r == nil {
		if !closing || req+resp == 0 {
			return
		}
		r = &record{method: "-", path: "(close)", cond: "-", agent: "-", tls: "-"}
	}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	fmt.Fprintf(lg.f, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", c.id, r.method, r.path, r.status, r.body, resp, req, r.cond, r.agent, r.tls)
	_ = lg.f.Sync()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen on this `host:port` (port 0: any free port)")
	logPath := flag.String("log", "", "append one line per request to this `file`")
	ready := flag.String("ready", "", "write the address listened on to this `file` once listening")
	caPath := flag.String("tls-ca", "", "serve HTTPS with a throwaway PKI, writing its root CA to this PEM `file`")
	etag := flag.Bool("etag", false, "send a strong ETag with every file, as nginx does: \"<mtime>-<size>\" in hex")
	idle := flag.Duration("idle-timeout", 0, "close keep-alive connections idle this `long` (0: never)")
	flag.Parse()
	if flag.NArg() != 1 || *logPath == "" || *ready == "" {
		fmt.Fprintln(os.Stderr, "usage: countserver [-addr 127.0.0.1:0] [-tls-ca CA.pem] [-etag] [-idle-timeout D] -log FILE -ready FILE DIR")
		os.Exit(2)
	}
	if err := run(*addr, *logPath, *ready, *caPath, *etag, *idle, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "countserver:", err)
		os.Exit(1)
	}
}

func run(addr, logPath, ready, caPath string, etag bool, idle time.Duration, dir string) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	lg := &logger{f: f}
	root := http.Dir(dir)
	files := http.FileServer(root)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cond []string
		if r.Header.Get("If-Modified-Since") != "" {
			cond = append(cond, "ims")
		}
		if r.Header.Get("If-None-Match") != "" {
			cond = append(cond, "inm")
		}
		condS := strings.Join(cond, "+")
		if condS == "" {
			condS = "-"
		}
		agent := r.UserAgent()
		if agent == "" {
			agent = "-"
		}
		if etag {
			setETag(w, root, r.URL.Path)
		}
		handshake := "-"
		if r.TLS != nil {
			handshake = "full"
			if r.TLS.DidResume {
				handshake = "resumed"
			}
		}
		bw := &bodyWriter{ResponseWriter: w}
		files.ServeHTTP(bw, r)
		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		if c, _ := r.Context().Value(connKey{}).(*countingConn); c != nil {
			c.mu.Lock()
			c.pending = &record{method: r.Method, path: r.URL.Path, cond: condS, agent: agent, status: bw.status, body: bw.body, tls: handshake}
			c.mu.Unlock()
		}
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       idle, // 0: ReadTimeout's, which is 0: never
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, counted(c))
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			cc := counted(c)
			if cc == nil {
				return
			}
			switch s {
			case http.StateIdle:
				lg.done(cc, false)
			case http.StateClosed, http.StateHijacked:
				lg.done(cc, false)
				lg.done(cc, true)
			}
		},
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var ln net.Listener = &listener{Listener: tcp}
	if caPath != "" {
		cfg, err := throwawayPKI(caPath)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, cfg)
	}
	if err := os.WriteFile(ready, []byte(tcp.Addr().String()+"\n"), 0o644); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// setETag sets nginx's default ETag for the regular file at urlPath, if there is one:
// "<mtime>-<size>", Unix seconds and bytes in lower-case hexadecimal. FileServer then
// answers If-None-Match with it (and sends no Last-Modified with a 304).
func setETag(w http.ResponseWriter, root http.Dir, urlPath string) {
	if !strings.HasPrefix(urlPath, "/") {
		urlPath = "/" + urlPath
	}
	f, err := root.Open(path.Clean(urlPath))
	if err != nil {
		return
	}
	fi, err := f.Stat()
	_ = f.Close()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().Unix(), fi.Size()))
}

// throwawayPKI makes a root CA, an intermediate CA and a leaf for 127.0.0.1, writes the
// root to caPath and returns a server configuration presenting the leaf and the
// intermediate.
func throwawayPKI(caPath string) (*tls.Config, error) {
	now := time.Now()
	serial := int64(1)
	mk := func(cn string, isCA bool, parent *x509.Certificate, parentKey *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey, []byte, error) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, nil, err
		}
		serial++
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"satchel bench"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			BasicConstraintsValid: true,
			IsCA:                  isCA,
		}
		if isCA {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		return cert, key, der, err
	}
	root, rootKey, rootDER, err := mk("bench root CA", true, nil, nil)
	if err != nil {
		return nil, err
	}
	inter, interKey, interDER, err := mk("bench intermediate CA", true, root, rootKey)
	if err != nil {
		return nil, err
	}
	_, leafKey, leafDER, err := mk("127.0.0.1", false, inter, interKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), 0o644); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER, interDER}, PrivateKey: leafKey}},
	}, nil
}
