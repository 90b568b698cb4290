package braid

// API tokens: sent as "authorization: Bearer TOKEN" metadata on every braid.v1 call.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode"

	"google.golang.org/grpc"
)

// tokenOption is the grpc.DialOption WithToken makes; newConn reads it (grpc ignores it).
type tokenOption struct {
	grpc.EmptyDialOption
	token string
}

// WithToken sets the API token sent as "authorization: Bearer TOKEN" on every call of a
// Client (Dial) or a Worker (WorkerOptions.DialOptions), instead of $BRAID_TOKEN (the default
// when no WithToken is given). An empty token sends none. Surrounding whitespace is dropped; a
// token with whitespace, control or non-ASCII characters inside makes Dial (or Worker.Run) fail.
func WithToken(token string) grpc.DialOption { return tokenOption{token: token} }

// resolveToken is the token the options give (the last WithToken), else $BRAID_TOKEN; "" for none.
func resolveToken(opts []grpc.DialOption) (string, error) {
	token, source, given := "", "token", false
	for _, o := range opts {
		if t, ok := o.(tokenOption); ok {
			token, given = t.token, true
		}
	}
	if !given {
		token, source = os.Getenv("BRAID_TOKEN"), "BRAID_TOKEN"
	}
	token = strings.TrimSpace(token)
	for _, c := range token {
		if c >= '!' && c <= '~' {
			continue
		}
		what := "a non-ASCII character"
		switch {
		case unicode.IsSpace(c):
			what = "whitespace"
		case c < 0x80:
			what = "a control character"
		}
		hint := ""
		if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
			hint = " (pass the token alone, without 'Bearer ')"
		}
		return "", fmt.Errorf("braid: invalid %s: it contains %s (%q); a token is `brd_` and 43 URL-safe base64 characters%s", source, what, c, hint)
	}
	return token, nil
}

// bearer is the per-call credential carrying the token (over plaintext too: `braid dev`).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
