// Command example talks to modxd with the generated modxv1 stubs: it prints the
// daemon's status and its tasks.
//
//	MODX_ADDRESS=unix:///run/modx/modxd.sock MODX_TOKEN_FILE=~/.config/modx/token go run ./example
//
// The address is unix:///path or host:port (TCP is always TLS: MODX_TLS_CA, and for
// mutual TLS MODX_TLS_CERT and MODX_TLS_KEY). The token comes from MODX_TOKEN or
// MODX_TOKEN_FILE, never from a flag.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	modxv1 "github.com/modx/modx/clients/go/modxv1"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "example: "+format+"\n", args...)
	os.Exit(1)
}

func token() string {
	if t := strings.TrimSpace(os.Getenv("MODX_TOKEN")); t != "" {
		return t
	}
	if path := os.Getenv("MODX_TOKEN_FILE"); path != "" {
		data, err := ioutil.ReadFile(path)
		if err != nil {
			fail("cannot read MODX_TOKEN_FILE: %v", err)
		}
		return strings.TrimSpace(string(data))
	}
	return ""
}

func dial(address string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if strings.HasPrefix(address, "unix:") {
		path := strings.TrimPrefix(strings.TrimPrefix(address, "unix://"), "unix:")
		dialer := func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		// As modxctl: on the local socket, bandwidth-delay probing finds no window worth growing and
		// only makes the daemon answer PINGs; a fixed window (setting one turns probing off) instead.
		return grpc.DialContext(ctx, "passthrough:///modxd", grpc.WithInsecure(), grpc.WithBlock(),
			grpc.WithContextDialer(dialer), grpc.WithInitialWindowSize(8<<20),
			grpc.WithInitialConnWindowSize(8<<20))
	}
	config := &tls.Config{ServerName: os.Getenv("MODX_TLS_SERVER_NAME")}
	if ca := os.Getenv("MODX_TLS_CA"); ca != "" {
		pem, err := ioutil.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		config.RootCAs = pool
	}
	if cert := os.Getenv("MODX_TLS_CERT"); cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, os.Getenv("MODX_TLS_KEY"))
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return grpc.DialContext(ctx, address, grpc.WithTransportCredentials(credentials.NewTLS(config)),
		grpc.WithBlock())
}

func main() {
	address := os.Getenv("MODX_ADDRESS")
	if address == "" {
		address = "unix:///run/modx/modxd.sock"
	}
	conn, err := dial(address)
	if err != nil {
		fail("cannot reach modxd at %s: %v", address, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Names this client, so its watch streams get their own allowance (max_watchers_per_client)
	// instead of sharing the one of every unnamed local caller.
	ctx = metadata.AppendToOutgoingContext(ctx, "modx-client-id", fmt.Sprintf("go-example-%d", os.Getpid()))
	if t := token(); t != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+t)
	}
	status, err := modxv1.NewSystemServiceClient(conn).GetStatus(ctx, &modxv1.GetStatusRequest{})
	if err != nil {
		fail("GetStatus: %v", err)
	}
	fmt.Printf("modxd %s (%s), %d running, %d pending, quota %d\n", status.Version, status.ApiVersion,
		status.TasksRunning, status.TasksPending, status.QuotaBalance)
	tasks, err := modxv1.NewTrainingServiceClient(conn).ListTasks(ctx, &modxv1.ListTasksRequest{})
	if err != nil {
		fail("ListTasks: %v", err)
	}
	for _, task := range tasks.Tasks {
		fmt.Printf("%s\t%s\t%s\tstep %d/%d\n", task.Id, task.Type, task.State, task.CurrentStep, task.TotalSteps)
	}
	fmt.Printf("%d task(s)\n", tasks.TotalSize)
}
