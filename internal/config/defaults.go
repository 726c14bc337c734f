package config

import (
	"slices"

	"github.com/portico-gw/portico/internal/listener"
)

// Default addresses, used when the file leaves them out.
const (
	DefaultListen = ":8080"
	DefaultAdmin  = "127.0.0.1:9901"
)

// EffectiveListeners returns the listeners to open: Listeners as written, or one plain listener on
// Listen, or one on DefaultListen when neither is set. The slice is a copy. (It cannot be called
// Listeners: that is the field.)
func (f *File) EffectiveListeners() []listener.Config {
	switch {
	case len(f.Listeners) > 0:
		return slices.Clone(f.Listeners)
	case f.Listen != "":
		return []listener.Config{{Address: f.Listen}}
	default:
		return []listener.Config{{Address: DefaultListen}}
	}
}

// AdminAddr returns the admin listener address: DefaultAdmin when unset, "" when set to "off".
func (f *File) AdminAddr() string {
	switch f.Admin {
	case "":
		return DefaultAdmin
	case "off":
		return ""
	default:
		return f.Admin
	}
}

// AccessLogEnabled reports whether the per-request log line is written (default true).
func (f *File) AccessLogEnabled() bool {
	return f.AccessLog.Enabled == nil || *f.AccessLog.Enabled
}

// AccessLogOutput returns where the access log goes: "stdout" (default), "stderr" or a file path.
func (f *File) AccessLogOutput() string {
	if f.AccessLog.Output == "" {
		return "stdout"
	}
	return f.AccessLog.Output
}
