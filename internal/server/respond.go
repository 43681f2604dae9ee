package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/satchelcm/satchel/internal/api"
)

// httpError is an error with the status and code to answer it with.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) error {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// handlerFunc is a handler that returns its error; serve answers it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// serve runs h and answers its error as an api.Error: an httpError as it says, anything
// else as 500 with a message that tells nothing of the server's internals (the log has
// the error).
func (s *Server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{status: http.StatusInternalServerError, code: api.CodeInternal, msg: "internal error (see the server's log)"}
		} else {
			s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
				"status", he.status, "code", he.code, "err", he.msg)
		}
		writeJSON(w, he.status, api.Error{Code: he.code, Message: he.msg})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// readJSON decodes the request body into v, refusing a body over limit bytes (413), one
// that is not JSON of v's shape, and trailing data.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	data, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "request body: %v", err)
	}
	return nil
}

// readBody reads the request body, refusing one over limit bytes (413), counted both as
// sent and, for a gzipped body (Content-Encoding: gzip), once decompressed: a small bomb
// that inflates beyond the limit is refused as it inflates.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body over %d bytes", limit)
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "request body: not gzip: %v", err)
		}
		body = io.LimitReader(zr, limit+1)
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, api.CodeBadRequest, "request body: content encoding %q: want gzip or none", enc)
	}
	data, err := io.ReadAll(body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || int64(len(data)) > limit {
		return nil, tooLarge
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "read request body: %v", err)
	}
	return data, nil
}

// jsonObject reports whether data is a JSON object. It scans without decoding (a report
// of a thousand resources is checked, not built in memory).
func jsonObject(data []byte) bool {
	return decodedObject(data) && json.Valid(data)
}

// decodedObject reports whether a json.RawMessage that json.Unmarshal filled (and so
// checked) holds an object.
func decodedObject(raw []byte) bool {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}
