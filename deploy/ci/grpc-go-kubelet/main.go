// Command grpc-go-kubelet plays the kubelet's gRPC side of the device-plugin API with grpc-go,
// the gRPC implementation the real kubelet uses, so that tests can check our plugins (served by
// grpclib) against it. It mirrors the kubelet's device manager (pkg/kubelet/cm/devicemanager,
// plugin/v1beta1 server.go and client.go):
//
//   - on start it deletes the contents of -dir (plugins must notice and register again), then
//     serves v1beta1.Registration on <dir>/kubelet.sock;
//   - Register checks the version and the resource name, dials <dir>/<endpoint> as the kubelet
//     does (unix socket, insecure, WithBlock, 10 s timeout, authority "localhost"), calls
//     GetDevicePluginOptions and only then answers; then it follows ListAndWatch in the
//     background. A new registration of a resource replaces the previous connection;
//   - with -pod-resources it serves v1.PodResourcesLister/List from the pods of the successful
//     allocations that named a pod.
//
// Everything it sees is printed on stdout as one JSON object a line ("event": "serving",
// "register", "devices", "stream_end", "reply"). Stdin takes one JSON command a line, answered
// by a "reply" event carrying the command's "id":
//
//	{"id": 1, "op": "allocate", "resource": "akri.sh/x", "ids": ["x-0"], "pod": "default/p"}
//	{"id": 2, "op": "preferred", "resource": "akri.sh/x", "available": ["x-0", "x-1"], "must_include": [], "size": 1}
//	{"id": 3, "op": "remove_pod", "pod": "default/p"}
//	{"id": 4, "op": "restart", "authority": ""}
//
// "restart" is the kubelet going away and starting again; "authority", when given, changes the
// :authority of plugin connections from then on ("" = grpc-go's default, the socket path, as
// kubelets before 1.26 send; the default is "localhost", as newer kubelets send).
//
// A failed RPC replies {"ok": false, "code": "InvalidArgument", "code_number": 3, "message": ...}.
// The process ends when stdin closes.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/jsonpb"
	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	podresources "akrikubelet/v1"
	api "akrikubelet/v1beta1"
)

const (
	kubeletSocket  = "kubelet.sock"
	checkpointFile = "kubelet_internal_checkpoint" // the one file a kubelet keeps in the directory
	apiVersion     = "v1beta1"
	healthy        = "Healthy"
	unhealthy      = "Unhealthy"
)

// ---- output -----------------------------------------------------------------------------

type output struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (o *output) emit(event string, fields map[string]interface{}) {
	fields["event"] = event
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.enc.Encode(fields); err != nil {
		fmt.Fprintf(os.Stderr, "cannot write event: %v\n", err)
	}
}

var pbJSON = jsonpb.Marshaler{OrigName: true, EmitDefaults: true}

func protoJSON(m proto.Message) json.RawMessage {
	text, err := pbJSON.MarshalToString(m)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", "cannot marshal: "+err.Error()))
	}
	return json.RawMessage(text)
}

// statusFields describes an RPC error as its gRPC status.
func statusFields(err error) map[string]interface{} {
	st, _ := status.FromError(err) // non-status errors become Unknown
	return map[string]interface{}{"ok": false, "code": st.Code().String(), "code_number": int(st.Code()),
		"message": st.Message()}
}

// ---- plugin connections -----------------------------------------------------------------

type plugin struct {
	resource string
	socket   string
	conn     *grpc.ClientConn
	client   api.DevicePluginClient
	options  *api.DevicePluginOptions
	devices  map[string]string // id -> health
}

type kubelet struct {
	dir         string
	authority   string
	dialTimeout time.Duration
	out         *output

	mu      sync.Mutex
	plugins map[string]*plugin
	server  *grpc.Server
	starts  int
	pods    map[string]map[string][]string // "namespace/name" -> resource -> device ids
}

// dial connects to a plugin as the kubelet's v1beta1 client does.
func (k *kubelet) dial(socket string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), k.dialTimeout)
	defer cancel()
	k.mu.Lock()
	authority := k.authority
	k.mu.Unlock()
	opts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}),
	}
	if authority != "" { // kubelets before 1.26 set none: grpc-go then sends the socket path
		opts = append(opts, grpc.WithAuthority(authority))
	}
	return grpc.DialContext(ctx, socket, opts...)
}

type registration struct {
	k *kubelet
	api.UnimplementedRegistrationServer
}

func (r *registration) Register(ctx context.Context, req *api.RegisterRequest) (*api.Empty, error) {
	options, err := r.k.register(req)
	fields := map[string]interface{}{"resource": req.ResourceName, "endpoint": req.Endpoint,
		"version": req.Version, "accepted": err == nil, "error": ""}
	if req.Options != nil {
		fields["options"] = protoJSON(req.Options) // what the plugin announced in RegisterRequest
	}
	if options != nil {
		fields["plugin_options"] = protoJSON(options) // what GetDevicePluginOptions answered
	}
	if err != nil {
		fields["error"] = err.Error()
	}
	r.k.out.emit("register", fields)
	if err != nil {
		return nil, err
	}
	return &api.Empty{}, nil
}

func resourceNameProblem(name string) string {
	parts := strings.Split(name, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "must be <domain>/<name>"
	}
	if parts[0] == "kubernetes.io" || strings.HasSuffix(parts[0], ".kubernetes.io") {
		return "the kubernetes.io namespace is reserved"
	}
	return ""
}

// register does what the kubelet does before answering Register; it returns the plugin's options.
func (k *kubelet) register(req *api.RegisterRequest) (*api.DevicePluginOptions, error) {
	if req.Version != apiVersion {
		return nil, fmt.Errorf("invalid version %q: the kubelet supports %s", req.Version, apiVersion)
	}
	if problem := resourceNameProblem(req.ResourceName); problem != "" {
		return nil, fmt.Errorf("invalid resource name %q: %s", req.ResourceName, problem)
	}
	if req.Endpoint == "" || filepath.Base(req.Endpoint) != req.Endpoint {
		return nil, fmt.Errorf("invalid endpoint %q: must be a file name in %s", req.Endpoint, k.dir)
	}
	socket := filepath.Join(k.dir, req.Endpoint)
	conn, err := k.dial(socket)
	if err != nil {
		return nil, fmt.Errorf("cannot dial device plugin %s at %s: %v", req.ResourceName, socket, err)
	}
	client := api.NewDevicePluginClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), k.dialTimeout)
	defer cancel()
	options, err := client.GetDevicePluginOptions(ctx, &api.Empty{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("GetDevicePluginOptions of %s failed: %v", req.ResourceName, err)
	}
	p := &plugin{resource: req.ResourceName, socket: socket, conn: conn, client: client, options: options,
		devices: map[string]string{}}
	k.mu.Lock()
	old := k.plugins[req.ResourceName]
	k.plugins[req.ResourceName] = p
	k.mu.Unlock()
	if old != nil {
		old.conn.Close()
	}
	go k.listAndWatch(p)
	return options, nil
}

func (k *kubelet) listAndWatch(p *plugin) {
	err := k.followStream(p)
	k.mu.Lock()
	current := k.plugins[p.resource] == p
	if current { // as markResourceUnhealthy: the devices stay known, unhealthy
		for id := range p.devices {
			p.devices[id] = unhealthy
		}
	}
	k.mu.Unlock()
	fields := map[string]interface{}{"resource": p.resource, "endpoint": filepath.Base(p.socket),
		"current": current}
	for key, value := range statusFields(err) {
		fields[key] = value
	}
	k.out.emit("stream_end", fields)
}

func (k *kubelet) followStream(p *plugin) error {
	stream, err := p.client.ListAndWatch(context.Background(), &api.Empty{})
	if err != nil {
		return err
	}
	for {
		response, err := stream.Recv()
		if err != nil {
			return err
		}
		devices := make([]map[string]interface{}, 0, len(response.Devices))
		k.mu.Lock()
		p.devices = map[string]string{}
		for _, d := range response.Devices {
			p.devices[d.ID] = d.Health
			devices = append(devices, map[string]interface{}{"id": d.ID, "health": d.Health})
		}
		k.mu.Unlock()
		k.out.emit("devices", map[string]interface{}{"resource": p.resource,
			"endpoint": filepath.Base(p.socket), "devices": devices})
	}
}

// ---- registration server lifecycle ------------------------------------------------------

// clearDirectory removes what a starting kubelet removes: everything but its checkpoint.
func (k *kubelet) clearDirectory() error {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == checkpointFile || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(k.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (k *kubelet) start() error {
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return err
	}
	if err := k.clearDirectory(); err != nil {
		return err
	}
	listener, err := net.Listen("unix", filepath.Join(k.dir, kubeletSocket))
	if err != nil {
		return err
	}
	server := grpc.NewServer()
	api.RegisterRegistrationServer(server, &registration{k: k})
	k.mu.Lock()
	k.server = server
	k.starts++
	starts := k.starts
	k.mu.Unlock()
	go server.Serve(listener)
	k.out.emit("serving", map[string]interface{}{"socket": filepath.Join(k.dir, kubeletSocket),
		"starts": starts, "authority": k.authority})
	return nil
}

// stop is the kubelet going away: its server and every plugin connection close.
func (k *kubelet) stop() {
	k.mu.Lock()
	server, plugins := k.server, k.plugins
	k.server, k.plugins = nil, map[string]*plugin{}
	k.mu.Unlock()
	if server != nil {
		server.Stop()
	}
	for _, p := range plugins {
		p.conn.Close()
	}
}

// ---- pod resources ----------------------------------------------------------------------

type podResources struct {
	k *kubelet
	podresources.UnimplementedPodResourcesListerServer
}

func (s *podResources) List(ctx context.Context, req *podresources.ListPodResourcesRequest) (
	*podresources.ListPodResourcesResponse, error) {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	keys := make([]string, 0, len(s.k.pods))
	for key := range s.k.pods {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	response := &podresources.ListPodResourcesResponse{}
	for _, key := range keys {
		parts := strings.SplitN(key, "/", 2)
		container := &podresources.ContainerResources{Name: "main"}
		for resource, ids := range s.k.pods[key] {
			container.Devices = append(container.Devices,
				&podresources.ContainerDevices{ResourceName: resource, DeviceIds: ids})
		}
		response.PodResources = append(response.PodResources, &podresources.PodResources{
			Namespace: parts[0], Name: parts[1], Containers: []*podresources.ContainerResources{container}})
	}
	return response, nil
}

func servePodResources(k *kubelet, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	listener, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	server := grpc.NewServer()
	podresources.RegisterPodResourcesListerServer(server, &podResources{k: k})
	go server.Serve(listener)
	return nil
}

// ---- control ----------------------------------------------------------------------------

type command struct {
	ID          int      `json:"id"`
	Op          string   `json:"op"`
	Resource    string   `json:"resource"`
	IDs         []string `json:"ids"`
	Pod         string   `json:"pod"`
	Available   []string `json:"available"`
	MustInclude []string `json:"must_include"`
	Size        int32    `json:"size"`
	Authority   *string  `json:"authority"`
}

func (k *kubelet) client(resource string) (api.DevicePluginClient, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.plugins[resource]
	if p == nil {
		return nil, fmt.Errorf("no plugin registered for %s", resource)
	}
	return p.client, nil
}

func (k *kubelet) handle(c command) map[string]interface{} {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch c.Op {
	case "allocate", "preferred":
		client, err := k.client(c.Resource)
		if err != nil {
			return map[string]interface{}{"ok": false, "error": err.Error()}
		}
		var response proto.Message
		if c.Op == "allocate" {
			response, err = client.Allocate(ctx, &api.AllocateRequest{ContainerRequests: []*api.ContainerAllocateRequest{
				{DevicesIds: c.IDs}}})
		} else {
			response, err = client.GetPreferredAllocation(ctx, &api.PreferredAllocationRequest{
				ContainerRequests: []*api.ContainerPreferredAllocationRequest{{AvailableDeviceIDs: c.Available,
					MustIncludeDeviceIDs: c.MustInclude, AllocationSize: c.Size}}})
		}
		if err != nil {
			return statusFields(err)
		}
		if c.Op == "allocate" && c.Pod != "" {
			if !strings.Contains(c.Pod, "/") {
				c.Pod = "default/" + c.Pod
			}
			k.mu.Lock()
			if k.pods[c.Pod] == nil {
				k.pods[c.Pod] = map[string][]string{}
			}
			k.pods[c.Pod][c.Resource] = append(k.pods[c.Pod][c.Resource], c.IDs...)
			k.mu.Unlock()
		}
		return map[string]interface{}{"ok": true, "response": protoJSON(response)}
	case "remove_pod":
		if !strings.Contains(c.Pod, "/") {
			c.Pod = "default/" + c.Pod
		}
		k.mu.Lock()
		_, found := k.pods[c.Pod]
		delete(k.pods, c.Pod)
		k.mu.Unlock()
		return map[string]interface{}{"ok": found}
	case "restart":
		k.stop()
		if c.Authority != nil {
			k.mu.Lock()
			k.authority = *c.Authority
			k.mu.Unlock()
		}
		if err := k.start(); err != nil {
			return map[string]interface{}{"ok": false, "error": err.Error()}
		}
		return map[string]interface{}{"ok": true}
	}
	return map[string]interface{}{"ok": false, "error": fmt.Sprintf("unknown op %q", c.Op)}
}

func main() {
	dir := flag.String("dir", "", "device-plugin directory (kubelet.sock is served in it)")
	podResourcesSocket := flag.String("pod-resources", "", "serve v1.PodResourcesLister on this socket")
	authority := flag.String("authority", "localhost",
		"the :authority of plugin connections (kubelet >= 1.26 sets localhost; empty: grpc-go's default)")
	dialTimeout := flag.Duration("dial-timeout", 10*time.Second, "timeout of dialing a plugin")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "-dir is required")
		os.Exit(2)
	}
	k := &kubelet{dir: *dir, authority: *authority, dialTimeout: *dialTimeout,
		out: &output{enc: json.NewEncoder(os.Stdout)}, plugins: map[string]*plugin{},
		pods: map[string]map[string][]string{}}
	if *podResourcesSocket != "" {
		if err := servePodResources(k, *podResourcesSocket); err != nil {
			fmt.Fprintf(os.Stderr, "cannot serve pod resources: %v\n", err)
			os.Exit(1)
		}
	}
	if err := k.start(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot serve registration: %v\n", err)
		os.Exit(1)
	}
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var c command
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			k.out.emit("reply", map[string]interface{}{"ok": false, "error": "bad command: " + err.Error()})
			continue
		}
		reply := k.handle(c)
		reply["id"] = c.ID
		reply["op"] = c.Op
		k.out.emit("reply", reply)
	}
	k.stop()
}
