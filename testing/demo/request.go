package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// DefaultUserID is the user a read request is about when it names none, so that the demo's
// dashboard works without authentication set up.
const DefaultUserID = "u1"

// Headers that name the caller's user. HeaderSubject is what Portico sets from an authenticated
// identity (and strips from client requests), so it wins over HeaderUserID, which a client or
// test may send directly.
const (
	HeaderSubject = "X-Authenticated-Subject"
	HeaderUserID  = "X-User-ID"
)

// headerUser returns the user named by the request's headers, or "".
func headerUser(r *http.Request) string {
	if id := r.Header.Get(HeaderSubject); id != "" {
		return id
	}
	return r.Header.Get(HeaderUserID)
}

// maxBatchIDs bounds a batch lookup; dataloaders send far fewer.
const maxBatchIDs = 1000

// maxBodyBytes bounds a JSON request body.
const maxBodyBytes = 1 << 20

// readUserID picks the user a read is about: the user_id query parameter, else the headers
// (X-Authenticated-Subject, X-User-ID), else DefaultUserID.
func readUserID(r *http.Request) string {
	if id := r.URL.Query().Get("user_id"); id != "" {
		return id
	}
	if id := headerUser(r); id != "" {
		return id
	}
	return DefaultUserID
}

// queryLimit reads the limit query parameter: def when absent, clamped to max (as list APIs
// commonly do), an error when it is not a positive integer.
func queryLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit %q: must be a positive integer", s)
	}
	return min(n, max), nil
}

// queryIDs reads a comma-separated ids parameter. present is false when the parameter is absent
// (as opposed to empty, which asks for nothing).
func queryIDs(r *http.Request) (ids []string, present bool, err error) {
	q := r.URL.Query()
	if !q.Has("ids") {
		return nil, false, nil
	}
	for _, v := range q["ids"] {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > maxBatchIDs {
		return nil, true, fmt.Errorf("ids: at most %d per request, got %d", maxBatchIDs, len(ids))
	}
	return ids, true, nil
}

// decodeBody decodes a JSON request body strictly: unknown fields and trailing data are errors,
// since a demo backend that silently ignored a misspelt field would hide gateway bugs. An empty
// body leaves v untouched.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: more than one value")
	}
	return nil
}

func badRequest(w http.ResponseWriter, err error) {
	writeError(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
}

func notFound(w http.ResponseWriter, what, id string) {
	writeError(w, http.StatusNotFound, "NOT_FOUND", what+" "+strconv.Quote(id)+" not found")
}
