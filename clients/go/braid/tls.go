package braid

// TLS and mTLS for https:// endpoints: the CA to trust and a client certificate, from files or PEM.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
)

// TLSConfig configures TLS for an "https://" endpoint (WithTLS). Each PEM comes from a file
// (the ...File fields) or is given as is (CACert, ClientCert, ClientKey); not both.
type TLSConfig struct {
	// The CA certificate(s) the server's certificate must chain to (default: the system roots).
	CACertFile string
	CACert     []byte
	// A client certificate (chain) and its private key, for a server that requires one (mTLS).
	// They go together.
	ClientCertFile string
	ClientCert     []byte
	ClientKeyFile  string
	ClientKey      []byte
	// The name the server's certificate is checked against (default: the endpoint's host).
	ServerName string
}

// tlsOption is the grpc.DialOption WithTLS makes; newConn reads it (grpc ignores it).
type tlsOption struct {
	grpc.EmptyDialOption
	cfg TLSConfig
}

// WithTLS sets the TLS of an "https://" endpoint for a Client (Dial) or a Worker
// (WorkerOptions.DialOptions): the CA the server's certificate must chain to and, for a server
// that requires client certificates (mTLS), the client's certificate and key. With an "http://"
// or "host:port" endpoint, a client certificate without its key (or the reverse), an unreadable
// file or one without the expected PEM block, Dial (or Worker.Run) fails with an error naming
// the field. Without WithTLS an "https://" endpoint trusts the system roots.
func WithTLS(cfg TLSConfig) grpc.DialOption { return tlsOption{cfg: cfg} }

// WithTLSFiles is WithTLS with PEM files: the CA (empty: the system roots) and, for mTLS, the
// client certificate and key (empty: none).
func WithTLSFiles(caCert, clientCert, clientKey string) grpc.DialOption {
	return WithTLS(TLSConfig{CACertFile: caCert, ClientCertFile: clientCert, ClientKeyFile: clientKey})
}

// resolveTLS is the TLSConfig the options give (the last WithTLS; the zero TLSConfig without one).
func resolveTLS(opts []grpc.DialOption) TLSConfig {
	var cfg TLSConfig
	for _, o := range opts {
		if t, ok := o.(tlsOption); ok {
			cfg = t.cfg
		}
	}
	return cfg
}

// set lists the fields of cfg that are set, by name.
func (cfg TLSConfig) set() []string {
	var names []string
	add := func(name string, on bool) {
		if on {
			names = append(names, name)
		}
	}
	add("CACertFile", cfg.CACertFile != "")
	add("CACert", len(cfg.CACert) > 0)
	add("ClientCertFile", cfg.ClientCertFile != "")
	add("ClientCert", len(cfg.ClientCert) > 0)
	add("ClientKeyFile", cfg.ClientKeyFile != "")
	add("ClientKey", len(cfg.ClientKey) > 0)
	add("ServerName", cfg.ServerName != "")
	return names
}

// tlsConfig checks cfg and builds the crypto/tls configuration of an https:// endpoint.
func (cfg TLSConfig) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	ca, err := readPEM("CACert", cfg.CACertFile, cfg.CACert, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	if ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("braid: TLS %s: holds no valid PEM certificate", source("CACert", cfg.CACertFile))
		}
		conf.RootCAs = pool
	}
	cert, err := readPEM("ClientCert", cfg.ClientCertFile, cfg.ClientCert, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	key, err := readPEM("ClientKey", cfg.ClientKeyFile, cfg.ClientKey, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	switch {
	case cert != nil && key == nil:
		return nil, fmt.Errorf("braid: TLS %s is set without ClientKeyFile (or ClientKey): they go together (mTLS)", source("ClientCert", cfg.ClientCertFile))
	case cert == nil && key != nil:
		return nil, fmt.Errorf("braid: TLS %s is set without ClientCertFile (or ClientCert): they go together (mTLS)", source("ClientKey", cfg.ClientKeyFile))
	case cert != nil:
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("braid: TLS %s and %s: %w", source("ClientCert", cfg.ClientCertFile), source("ClientKey", cfg.ClientKeyFile), err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// readPEM is the PEM of one setting: the file's content or the bytes (nil when neither is set).
// It must hold a block whose type ends with kind.
func readPEM(name, file string, data []byte, kind string) ([]byte, error) {
	if file != "" && len(data) > 0 {
		return nil, fmt.Errorf("braid: TLS %sFile and %s are both set: use one", name, name)
	}
	if file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("braid: TLS %sFile: cannot read: %w", name, err)
		}
	}
	if len(data) == 0 {
		if file != "" {
			return nil, fmt.Errorf("braid: TLS %s: the file is empty", source(name, file))
		}
		return nil, nil
	}
	if !strings.Contains(string(data), kind+"-----") {
		what := strings.ToLower(kind)
		return nil, fmt.Errorf("braid: TLS %s: holds no PEM %s", source(name, file), what)
	}
	return data, nil
}

// source names a setting for an error: "CACertFile ca.pem" or "CACert".
func source(name, file string) string {
	if file != "" {
		return name + "File " + file
	}
	return name
}
