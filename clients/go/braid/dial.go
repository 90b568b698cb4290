package braid

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// MaxMessageBytes is the largest message on a worker stream, either way (64 MiB), as the
// control plane allows it.
const MaxMessageBytes = 64 * 1024 * 1024

// newConn opens a lazily connecting gRPC channel. The endpoint is "host:port" (plain HTTP/2),
// optionally written "http://host:port"; "https://host:port" uses TLS, configured by WithTLS in
// extra (default: the system roots, no client certificate). Every call carries the API token of
// WithToken in extra, else $BRAID_TOKEN (none when empty).
func newConn(endpoint string, extra []grpc.DialOption) (*grpc.ClientConn, error) {
	token, err := resolveToken(extra)
	if err != nil {
		return nil, err
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	tlsCfg := resolveTLS(extra)
	target := endpoint
	creds, https := insecure.NewCredentials(), false
	switch {
	case strings.HasPrefix(target, "http://"):
		target = strings.TrimPrefix(target, "http://")
	case strings.HasPrefix(target, "https://"):
		target, https = strings.TrimPrefix(target, "https://"), true
		conf, err := tlsCfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(conf)
	}
	if set := tlsCfg.set(); !https && len(set) > 0 {
		return nil, fmt.Errorf("braid: TLS %s set but the endpoint %q is not https://", strings.Join(set, ", "), endpoint)
	}
	target = strings.TrimSuffix(target, "/")
	if target == "" || strings.Contains(target, "/") && !strings.Contains(target, ":///") {
		return nil, fmt.Errorf("braid: invalid endpoint %q: use host:port", endpoint)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Detects a dead connection while the server is silent, so that leases are given up
		// (and handlers cancelled) in time.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// Reconnect the channel about as fast as the worker retries its stream (gRPC's default
		// waits up to 2 minutes between connection attempts).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// A task assignment carries whole payloads (the control plane reads large ones back from
		// object storage): accept what a worker stream may carry, not gRPC's default of 4 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	opts = append(opts, extra...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("braid: invalid endpoint %q: %w", endpoint, err)
	}
	return conn, nil
}
