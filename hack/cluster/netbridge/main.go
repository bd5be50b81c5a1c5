// Command netbridge connects the real node's network namespace to the host's
// loopback, so that no address but 127.0.0.1 exists outside that namespace:
//
//   - -forward NS_ADDR=HOST_ADDR (repeatable): listens on NS_ADDR inside the
//     namespace and relays each connection to HOST_ADDR on the host (the
//     kubelet, kube-proxy and pods reach the apiserver this way);
//   - -egress SOCKET: an HTTP CONNECT proxy on a unix socket for the
//     apiserver's egress selector; it dials addresses in -netns-cidr inside the
//     namespace (the real kubelet) and every other address on the host (kwok).
//
// A socket belongs to the network namespace of the thread that created it, so
// each socket meant for the namespace is created on a locked OS thread that
// has entered it; that thread is thrown away afterwards.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var forwards, cidrs listFlag
	netnsPath := flag.String("netns", "", "path of the node's network namespace (/run/netns/NAME)")
	egress := flag.String("egress", "", "unix socket for the apiserver's HTTP CONNECT egress")
	flag.Var(&forwards, "forward", "NS_ADDR=HOST_ADDR: relay NS_ADDR in the namespace to HOST_ADDR on the host (repeatable)")
	flag.Var(&cidrs, "netns-cidr", "a range whose addresses the egress proxy dials inside the namespace (repeatable)")
	flag.Parse()
	if *netnsPath == "" {
		log.Fatal("-netns is required")
	}
	ns, err := os.Open(*netnsPath)
	if err != nil {
		log.Fatalf("opening the namespace: %v", err)
	}
	var inNS []*net.IPNet
	for _, c := range cidrs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			log.Fatalf("-netns-cidr %s: %v", c, err)
		}
		inNS = append(inNS, n)
	}
	for _, f := range forwards {
		nsAddr, hostAddr, ok := strings.Cut(f, "=")
		if !ok {
			log.Fatalf("-forward %q: want NS_ADDR=HOST_ADDR", f)
		}
		l, err := inNamespace(ns, func() (net.Listener, error) { return net.Listen("tcp", nsAddr) })
		if err != nil {
			log.Fatalf("listening on %s in the namespace: %v", nsAddr, err)
		}
		log.Printf("relaying %s (namespace) to %s (host)", nsAddr, hostAddr)
		go serve(l, func(c net.Conn) { relay(c, func() (net.Conn, error) { return dialHost(hostAddr) }) })
	}
	if *egress != "" {
		_ = os.Remove(*egress)
		l, err := net.Listen("unix", *egress)
		if err != nil {
			log.Fatalf("listening on %s: %v", *egress, err)
		}
		log.Printf("egress proxy on %s", *egress)
		go serve(l, func(c net.Conn) { connect(c, ns, inNS) })
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	if *egress != "" {
		_ = os.Remove(*egress)
	}
}

// inNamespace runs open on a fresh OS thread inside the namespace. The thread
// is never unlocked, so Go ends it with the goroutine instead of reusing it.
func inNamespace[T any](ns *os.File, open func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var zero T
		if _, _, errno := syscall.RawSyscall(sysSetns, ns.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
			done <- result{zero, fmt.Errorf("setns: %w", errno)}
			return
		}
		v, err := open()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

func dialHost(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }

func serve(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			log.Printf("accept on %s: %v", l.Addr(), err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go handle(c)
	}
}

func relay(c net.Conn, dial func() (net.Conn, error)) {
	defer c.Close()
	up, err := dial()
	if err != nil {
		log.Printf("dial: %v", err)
		return
	}
	defer up.Close()
	pipe(c, up, nil)
}

// pipe copies both ways until both directions end; buffered holds bytes
// already read from c.
func pipe(c, up net.Conn, buffered io.Reader) {
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn, r io.Reader) {
		_, _ = io.Copy(dst, r)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	from := io.Reader(c)
	if buffered != nil {
		from = buffered
	}
	go half(up, c, from)
	go half(c, up, up)
	<-done
	<-done
}

// connect serves one HTTP CONNECT request from the apiserver.
func connect(c net.Conn, ns *os.File, inNS []*net.IPNet) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprint(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	target := req.Host
	host, _, err := net.SplitHostPort(target)
	ip := net.ParseIP(host)
	if err != nil || ip == nil {
		fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\n\r\nnot an IP:port: %s\n", target)
		return
	}
	dial := func() (net.Conn, error) { return dialHost(target) }
	for _, n := range inNS {
		if n.Contains(ip) {
			dial = func() (net.Conn, error) {
				return inNamespace(ns, func() (net.Conn, error) { return dialHost(target) })
			}
		}
	}
	up, err := dial()
	if err != nil {
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n%v\n", err)
		return
	}
	defer up.Close()
	fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	pipe(c, up, br)
}
