// Package web serves the operators' live web view of a node: a page
// embedded in the binary (plain HTML, CSS and JavaScript; no build step,
// nothing fetched from the network), the JSON it polls, and the
// server-sent-event stream of cluster events. It only reads what the
// node already publishes; it changes nothing in the cluster.
package web

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

//go:embed static
var static embed.FS

// Paths served by Handler.
const (
	PathPage   = "/"
	PathView   = "/api/view"
	PathEvents = "/api/events"
)

// Config is what Handler serves.
type Config struct {
	// View returns the JSON document of PathView (the node's published
	// view of the cluster).
	View func() any
	// Hub streams events on PathEvents.
	Hub *Hub
	// Token, when non-empty, is required on every request (see Auth).
	Token string
}

// Handler returns mux with the page, PathView and PathEvents added, all
// behind Auth(token).
func Handler(mux *http.ServeMux, cfg Config) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /static/", http.StripPrefix("/static", files))
	mux.HandleFunc("GET "+PathView, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(cfg.View())
	})
	if cfg.Hub != nil {
		mux.Handle("GET "+PathEvents, cfg.Hub)
	}
	return Auth(cfg.Token, mux)
}

// Auth wraps h so that, when token is non-empty, every request must carry
// it: as "Authorization: Bearer <token>", or as the query parameter
// token=<token> (for the page's own links and its EventSource, which
// cannot set headers). Only the embedded /static/ files are served
// without it.
func Auth(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/static/") {
			// The page's script and style sheet are the same in every
			// binary and hold nothing about the cluster; the page that
			// loads them, and everything they read, needs the token.
			h.ServeHTTP(w, r)
			return
		}
		got := r.URL.Query().Get("token")
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			got = strings.TrimPrefix(a, "Bearer ")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hearsay"`)
			http.Error(w, "hearsay: this --http listener needs its --http-auth token (Authorization: Bearer <token>, or ?token=<token>)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CheckBind refuses to serve addr (a --http listen address) without a
// token unless it is a loopback address: the page, /metrics, /status and
// the profiles would otherwise be open to the network.
func CheckBind(addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http %q: %w", addr, err)
	}
	if loopback(host) {
		return nil
	}
	return fmt.Errorf("--http %s listens beyond loopback without a token: set --http-auth <token> or --http-auth-file <file> (requests then need \"Authorization: Bearer <token>\" or ?token=), or bind to 127.0.0.1", addr)
}

func loopback(host string) bool {
	if host == "" {
		return false // all interfaces
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
