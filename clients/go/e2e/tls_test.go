package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braid-dev/braid/clients/go/braid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// TLS and mTLS against `braid dev --tls-cert … --tls-key …` (and `--tls-client-ca …`), with
// certificates made here with crypto/x509: the client authors and triggers over https://, an
// in-process worker and the example worker (-ca-cert, -client-cert, -client-key) complete runs;
// plaintext clients, clients trusting another CA and, with mTLS, clients without a certificate
// or with one from another CA are refused. Bad options fail Dial (and Worker.Run) naming them.

// tlsFiles are the PEM files makeTLSFiles writes.
type tlsFiles struct {
	CA, OtherCA                           string // the test CA; a CA nobody trusts
	ServerCert, ServerKey                 string // for 127.0.0.1 and localhost, from CA
	ClientCert, ClientKey                 string // from CA
	OtherClientCert, OtherClientKey       string // from OtherCA
	dir                                   string
	caPEM, clientCertPEM, clientKeyPEM    []byte
	otherClientKeyPEM, otherClientCertPEM []byte
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// makeTLSFiles writes a CA, a server certificate for 127.0.0.1 and localhost (SAN IP and DNS),
// a client certificate, and a client certificate from a second CA into a temp dir (P-256 keys,
// PKCS#8).
func makeTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir()}
	serial := int64(1)
	write := func(name string, blockType string, der []byte) ([]byte, string) {
		data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
		path := filepath.Join(f.dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return data, path
	}
	// issue makes a key and a certificate from tmpl signed by parent (self-signed when nil),
	// written as NAME.pem and NAME.key.
	issue := func(name string, tmpl *x509.Certificate, parent *issuer) (*issuer, []byte, string, []byte, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.Subject = pkix.Name{CommonName: "braid test " + name}
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(48 * time.Hour)
		signer, signerKey := tmpl, key
		if parent != nil {
			signer, signerKey = parent.cert, parent.key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, certPath := write(name+".pem", "CERTIFICATE", der)
		keyPEM, keyPath := write(name+".key", "PRIVATE KEY", keyDER)
		return &issuer{cert, key}, certPEM, certPath, keyPEM, keyPath
	}
	caTmpl := func() *x509.Certificate {
		return &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	leaf := func(usage x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	}
	ca, caPEM, caPath, _, _ := issue("ca", caTmpl(), nil)
	other, _, otherPath, _, _ := issue("other-ca", caTmpl(), nil)
	server := leaf(x509.ExtKeyUsageServerAuth)
	server.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	server.DNSNames = []string{"localhost"}
	_, _, serverCert, _, serverKey := issue("server", server, ca)
	_, clientCertPEM, clientCert, clientKeyPEM, clientKey := issue("client", leaf(x509.ExtKeyUsageClientAuth), ca)
	_, otherCertPEM, otherCert, otherKeyPEM, otherKey := issue("other-client", leaf(x509.ExtKeyUsageClientAuth), other)
	f.CA, f.OtherCA, f.ServerCert, f.ServerKey = caPath, otherPath, serverCert, serverKey
	f.ClientCert, f.ClientKey, f.OtherClientCert, f.OtherClientKey = clientCert, clientKey, otherCert, otherKey
	f.caPEM, f.clientCertPEM, f.clientKeyPEM = caPEM, clientCertPEM, clientKeyPEM
	f.otherClientCertPEM, f.otherClientKeyPEM = otherCertPEM, otherKeyPEM
	return f
}

// startBraidTLS starts `braid dev` serving TLS with files' server certificate and, with mtls,
// requiring client certificates from files.CA; s.Endpoint() is its https:// endpoint.
func startBraidTLS(t *testing.T, files *tlsFiles, mtls bool) *server {
	t.Helper()
	s := &server{dir: t.TempDir(), leaseTTL: "30s", tlsArgs: []string{"--tls-cert", files.ServerCert, "--tls-key", files.ServerKey}}
	if mtls {
		s.tlsArgs = append(s.tlsArgs, "--tls-client-ca", files.CA)
	}
	s.start(t, "0")
	t.Cleanup(func() { s.stop() })
	dumpOnFailure(t, "braid dev", filepath.Join(s.dir, "braid.log"))
	return s
}

func TestTLSOptionsAreCheckedWhenDialling(t *testing.T) {
	files := makeTLSFiles(t)
	cases := []struct {
		endpoint string
		opt      grpc.DialOption
		want     string // a regexp
	}{
		{"http://127.0.0.1:1", braid.WithTLSFiles(files.CA, "", ""), `TLS CACertFile set but the endpoint "http://127\.0\.0\.1:1" is not https://`},
		{"127.0.0.1:1", braid.WithTLS(braid.TLSConfig{ClientCert: files.clientCertPEM, ClientKey: files.clientKeyPEM}), `TLS ClientCert, ClientKey set but the endpoint "127\.0\.0\.1:1" is not https://`},
		{"https://127.0.0.1:1", braid.WithTLSFiles(files.CA, files.ClientCert, ""), `TLS ClientCertFile .*client\.pem is set without ClientKeyFile`},
		{"https://127.0.0.1:1", braid.WithTLSFiles("", "", files.ClientKey), `TLS ClientKeyFile .*client\.key is set without ClientCertFile`},
		{"https://127.0.0.1:1", braid.WithTLSFiles("/nonexistent/ca.pem", "", ""), `TLS CACertFile: cannot read: open /nonexistent/ca\.pem: no such file or directory`},
		{"https://127.0.0.1:1", braid.WithTLSFiles(files.ClientKey, "", ""), `TLS CACertFile .*client\.key: holds no PEM certificate`},
		{"https://127.0.0.1:1", braid.WithTLSFiles("", files.ClientCert, files.ClientCert), `TLS ClientKeyFile .*client\.pem: holds no PEM private key`},
		{"https://127.0.0.1:1", braid.WithTLS(braid.TLSConfig{CACertFile: files.CA, CACert: files.caPEM}), `TLS CACertFile and CACert are both set`},
		{"https://127.0.0.1:1", braid.WithTLS(braid.TLSConfig{ClientCert: files.clientCertPEM, ClientKey: files.otherClientKeyPEM}), `TLS ClientCert and ClientKey: tls: private key does not match public key`},
		{"https://127.0.0.1:1", braid.WithTLS(braid.TLSConfig{CACert: []byte("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")}), `TLS CACert: holds no valid PEM certificate`},
	}
	for _, c := range cases {
		_, err := braid.Dial(context.Background(), c.endpoint, c.opt)
		if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
			t.Errorf("Dial(%s): got %v, want /%s/", c.endpoint, err, c.want)
		}
		w := braid.NewWorker(braid.WorkerOptions{Endpoint: c.endpoint, DialOptions: []grpc.DialOption{c.opt}})
		braid.Handle(w, "noop", func(context.Context, json.RawMessage, *braid.TaskContext) (any, error) { return nil, nil })
		if err := w.Run(context.Background()); err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
			t.Errorf("Worker.Run(%s): got %v, want /%s/", c.endpoint, err, c.want)
		}
	}
	// Good settings dial (lazily) without error.
	for _, opt := range []grpc.DialOption{
		braid.WithTLSFiles("", "", ""),
		braid.WithTLSFiles(files.CA, files.ClientCert, files.ClientKey),
		braid.WithTLS(braid.TLSConfig{CACert: files.caPEM, ClientCert: files.clientCertPEM, ClientKey: files.clientKeyPEM, ServerName: "localhost"}),
	} {
		c, err := braid.Dial(context.Background(), "https://127.0.0.1:1", opt)
		if err != nil {
			t.Errorf("Dial: %v", err)
			continue
		}
		c.Close()
	}
	// An empty WithTLS is no TLS setting at all: fine with a plaintext endpoint.
	if c, err := braid.Dial(context.Background(), "127.0.0.1:1", braid.WithTLSFiles("", "", "")); err != nil {
		t.Errorf("Dial with empty TLS files: %v", err)
	} else {
		c.Close()
	}
}

// wantRefused checks a call failed with Unavailable and the TLS reason in its message.
func wantRefused(t *testing.T, what string, err error, reason string) {
	t.Helper()
	wantCode(t, what, err, codes.Unavailable)
	if err != nil && !strings.Contains(err.Error(), reason) {
		t.Errorf("%s: %v does not say %q", what, err, reason)
	}
}

// shortCtx bounds a call that should fail at once.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTLSAClientAndWorkersCompleteRuns(t *testing.T) {
	t.Setenv("BRAID_TOKEN", "")
	files := makeTLSFiles(t)
	s := startBraidTLS(t, files, false)
	ctx := timeout(t)
	c := dialWithEndpoint(t, s.Endpoint(), braid.WithTLSFiles(files.CA, "", ""))

	// The client authors and reads.
	wf := braid.NewWorkflow("tls-go").Task(braid.Task{Name: "a", Type: "tls-echo-go"})
	if _, created, err := c.ApplyWorkflow(ctx, wf); err != nil || !created {
		t.Fatalf("ApplyWorkflow over TLS: %v (created %v)", err, created)
	}
	if stored, err := c.GetWorkflow(ctx, "tls-go", 0); err != nil || stored.Version != 1 {
		t.Fatalf("GetWorkflow over TLS: %+v, %v", stored, err)
	}

	// An in-process worker with the CA as PEM bytes.
	w := braid.NewWorker(braid.WorkerOptions{
		Endpoint:    s.Endpoint(),
		Name:        "go-tls",
		DialOptions: []grpc.DialOption{braid.WithTLS(braid.TLSConfig{CACert: files.caPEM})},
	})
	braid.Handle(w, "tls-echo-go", func(_ context.Context, in json.RawMessage, _ *braid.TaskContext) (json.RawMessage, error) {
		return in, nil
	})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker go-tls: Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("worker go-tls did not stop")
		}
	})
	run, _, err := c.Trigger(ctx, "tls-go", braid.TriggerOptions{Input: map[string]any{"n": 1}})
	if err != nil {
		t.Fatal(err)
	}
	got := waitState(t, c, run.ID, braid.RunSucceeded)
	if out := mustJSON(t, got.Output); !jsonEqual(out, map[string]any{"a": map[string]any{"n": float64(1)}}) {
		t.Errorf("output %v", out)
	}

	// The example worker with -ca-cert.
	wf2 := braid.NewWorkflow("tls-example-go").Task(braid.Task{Name: "a", Type: "echo"})
	if _, _, err := c.ApplyWorkflow(ctx, wf2); err != nil {
		t.Fatal(err)
	}
	startExample(t, s, "go-tls-example", "echo", 1, "-ca-cert", files.CA)
	run2, _, err := c.Trigger(ctx, "tls-example-go", braid.TriggerOptions{Input: map[string]any{"x": 2}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, run2.ID, braid.RunSucceeded)

	// Refused: plaintext, the system roots, another CA.
	_, err = dialWith(t, s).ListWorkers(shortCtx(t)) // s.Addr is host:port: plaintext
	wantCode(t, "a plaintext client", err, codes.Unavailable)
	_, err = dialWithEndpoint(t, s.Endpoint()).ListWorkers(shortCtx(t))
	wantRefused(t, "a client trusting the system roots", err, "certificate signed by unknown authority")
	_, err = dialWithEndpoint(t, s.Endpoint(), braid.WithTLSFiles(files.OtherCA, "", "")).ListWorkers(shortCtx(t))
	wantRefused(t, "a client trusting another CA", err, "certificate signed by unknown authority")

	// The example worker with -ca-cert and an http:// endpoint stops, naming the option.
	out, err := exec.Command(exampleWorkerBin, "-endpoint", "http://"+s.Addr, "-ca-cert", files.CA).CombinedOutput()
	if err == nil || !regexp.MustCompile(`example-worker: braid: TLS CACertFile set but the endpoint "http://127\.0\.0\.1:\d+" is not https://`).Match(out) {
		t.Errorf("example worker with -ca-cert and http://: %v\n%s", err, out)
	}
}

func TestMTLSAdmitsOnlyClientsWithACertificateFromItsCA(t *testing.T) {
	t.Setenv("BRAID_TOKEN", "")
	files := makeTLSFiles(t)
	s := startBraidTLS(t, files, true)
	ctx := timeout(t)
	c := dialWithEndpoint(t, s.Endpoint(), braid.WithTLSFiles(files.CA, files.ClientCert, files.ClientKey))

	wf := braid.NewWorkflow("mtls-go").Task(braid.Task{Name: "a", Type: "echo"})
	if _, _, err := c.ApplyWorkflow(ctx, wf); err != nil {
		t.Fatalf("ApplyWorkflow over mTLS: %v", err)
	}
	startExample(t, s, "go-mtls-example", "echo", 1, "-ca-cert", files.CA, "-client-cert", files.ClientCert, "-client-key", files.ClientKey)
	run, _, err := c.Trigger(ctx, "mtls-go", braid.TriggerOptions{Input: map[string]any{"y": 3}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, run.ID, braid.RunSucceeded)

	// Clients without a certificate, or with one from another CA, are refused.
	// (Unavailable; the message is the server's alert or, when the connection was already
	// closed, a broken pipe. crypto/tls sends no certificate that chains to none of the CAs the
	// server names in its CertificateRequest, so with another CA's certificate the server sees none.)
	_, err = dialWithEndpoint(t, s.Endpoint(), braid.WithTLSFiles(files.CA, "", "")).ListWorkers(shortCtx(t))
	wantCode(t, "a client without a certificate", err, codes.Unavailable)
	_, err = dialWithEndpoint(t, s.Endpoint(), braid.WithTLS(braid.TLSConfig{
		CACert: files.caPEM, ClientCert: files.otherClientCertPEM, ClientKey: files.otherClientKeyPEM,
	})).ListWorkers(shortCtx(t))
	wantCode(t, "a client with a certificate from another CA", err, codes.Unavailable)

	// So are workers: they keep retrying and never connect.
	for _, opt := range []grpc.DialOption{
		braid.WithTLSFiles(files.CA, "", ""),
		braid.WithTLSFiles(files.CA, files.OtherClientCert, files.OtherClientKey),
	} {
		var logs syncBuffer
		var mu sync.Mutex
		connects := 0
		w := braid.NewWorker(braid.WorkerOptions{
			Endpoint:            s.Endpoint(),
			Name:                "go-mtls-refused",
			DialOptions:         []grpc.DialOption{opt},
			ReconnectBackoff:    50 * time.Millisecond,
			MaxReconnectBackoff: 200 * time.Millisecond,
			Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
			OnEvent: func(ev braid.WorkerEvent) {
				if ev.Kind == braid.EventConnected {
					mu.Lock()
					connects++
					mu.Unlock()
				}
			},
		})
		braid.Handle(w, "echo", func(_ context.Context, in json.RawMessage, _ *braid.TaskContext) (json.RawMessage, error) {
			return in, nil
		})
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(logs.String(), "reconnecting after a delay") < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("refused worker: Run: %v", err)
		}
		mu.Lock()
		if connects != 0 || strings.Count(logs.String(), "reconnecting after a delay") < 2 {
			t.Errorf("a refused worker: %d connects; log:\n%s", connects, logs.String())
		}
		mu.Unlock()
	}
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workers {
		if w.Name != "go-mtls-example" {
			t.Errorf("an unexpected worker is connected: %+v", w)
		}
	}
}

// dialWithEndpoint is dialWith for an explicit endpoint.
func dialWithEndpoint(t *testing.T, endpoint string, opts ...grpc.DialOption) *braid.Client {
	t.Helper()
	c, err := braid.Dial(context.Background(), endpoint, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// syncBuffer is a bytes.Buffer safe for concurrent use (a worker logs from its goroutines).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
