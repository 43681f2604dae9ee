package transfer

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/store"
)

// rawServer answers every request on 127.0.0.1 with the raw response head given, and no
// body.
func rawServer(t *testing.T, head string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					if _, err := http.ReadRequest(r); err != nil {
						return
					}
					if _, err := conn.Write([]byte(head)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// A server's status line is quoted in warnings and errors, which go to a terminal: its
// control characters (an escape sequence that clears the screen and writes a forged line)
// never get there.
func TestStatusLineNotPassedToTerminal(t *testing.T) {
	for _, code := range []string{"503", "403", "206"} {
		t.Run(code, func(t *testing.T) {
			url := rawServer(t, "HTTP/1.1 "+code+" \x1b[2J\x1b[Hpulled: all good\x07\r\nContent-Length: 0\r\n\r\n")
			c, w := testClient(t, url)
			c.MaxAttempts = 2
			var root store.ID
			root[0] = 1
			_, err := c.Pull(context.Background(), newStore(t), root, nil)
			if err == nil {
				t.Fatal("pulled from a server that serves nothing")
			}
			for _, s := range []string{err.Error(), w.all()} {
				if strings.ContainsAny(s, "\x1b\x07") {
					t.Errorf("control characters passed on: %q", s)
				}
			}
			if !strings.Contains(err.Error(), "pulled: all good") && !strings.Contains(w.all(), "pulled: all good") {
				t.Errorf("the status is not shown at all: %q; warnings %q", err, w.all())
			}
		})
	}
}
