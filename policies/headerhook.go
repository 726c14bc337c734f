package policies

import "net/http"

// HeaderApplier adds or fixes response headers once the handler has set its own.
type HeaderApplier interface {
	ApplyHeaders(h http.Header)
}

// HeaderHook is a ResponseWriter that calls A.ApplyHeaders exactly once, right before the
// response head goes out (WriteHeader with a final status, the first Write, or a Flush), or from
// Finish when the handler wrote nothing. Policies that decorate responses (cors,
// security-headers) use it; A is a value type so wrapping allocates only the hook itself.
type HeaderHook[A HeaderApplier] struct {
	http.ResponseWriter
	A    A
	done bool
}

func (w *HeaderHook[A]) apply() {
	if !w.done {
		w.done = true
		w.A.ApplyHeaders(w.ResponseWriter.Header())
	}
}

// WriteHeader applies the headers before a final status; 1xx answers pass through untouched.
func (w *HeaderHook[A]) WriteHeader(code int) {
	if code >= 200 {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *HeaderHook[A]) Write(b []byte) (int, error) {
	w.apply()
	return w.ResponseWriter.Write(b)
}

// Flush passes through so streams stay streams.
func (w *HeaderHook[A]) Flush() {
	w.apply()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *HeaderHook[A]) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Finish applies the headers if the handler returned without writing anything.
func (w *HeaderHook[A]) Finish() { w.apply() }
