// envoycheck validates the project's Envoy bootstrap with Envoy's own API types (go-control-plane):
// the YAML must unmarshal strictly into envoy.config.bootstrap.v3.Bootstrap and pass ValidateAll(),
// and the proto descriptor the gRPC-JSON transcoder loads must hold every service it names, each
// method with a google.api.http rule.
//
//	go run . -config ../../deploy/k8s/base/inference/envoy.yaml -descriptor ../../build/envoy/inference_descriptor.pb
package main

import (
	"flag"
	"fmt"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	transcoderv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_json_transcoder/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"sigs.k8s.io/yaml"

	// Register every typed_config the bootstrap uses, so Any fields resolve.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dns/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

func main() {
	configPath := flag.String("config", "deploy/k8s/base/inference/envoy.yaml", "Envoy bootstrap (YAML)")
	descriptorPath := flag.String("descriptor", "", "FileDescriptorSet the transcoder loads (optional)")
	flag.Parse()
	if err := run(*configPath, *descriptorPath); err != nil {
		fmt.Fprintln(os.Stderr, "envoycheck:", err)
		os.Exit(1)
	}
	fmt.Println("envoycheck: OK")
}

func run(configPath, descriptorPath string) error {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	var bootstrap bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, &bootstrap); err != nil {
		return fmt.Errorf("%s does not match envoy.config.bootstrap.v3.Bootstrap: %w", configPath, err)
	}
	if err := bootstrap.ValidateAll(); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	transcoders, err := findTranscoders(&bootstrap)
	if err != nil {
		return err
	}
	if len(transcoders) == 0 {
		return fmt.Errorf("no grpc_json_transcoder filter found")
	}
	for _, t := range transcoders {
		if !t.GetConvertGrpcStatus() {
			return fmt.Errorf("transcoder must set convert_grpc_status")
		}
		if !t.GetRequestValidationOptions().GetRejectUnknownMethod() {
			return fmt.Errorf("transcoder must reject unknown methods")
		}
		if descriptorPath != "" {
			if err := checkDescriptor(descriptorPath, t.GetServices()); err != nil {
				return err
			}
		}
	}
	return nil
}

// findTranscoders returns the transcoder configs of every HTTP connection manager in the listeners,
// after checking per-route filter configs resolve too.
func findTranscoders(b *bootstrapv3.Bootstrap) ([]*transcoderv3.GrpcJsonTranscoder, error) {
	var out []*transcoderv3.GrpcJsonTranscoder
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
					continue
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						for name, cfg := range r.GetTypedPerFilterConfig() {
							var fcfg routev3.FilterConfig
							if err := cfg.UnmarshalTo(&fcfg); err != nil {
								return nil, fmt.Errorf("route %q: per-filter config for %s: %w", r.GetName(), name, err)
							}
						}
					}
				}
				for _, hf := range hcm.GetHttpFilters() {
					var t transcoderv3.GrpcJsonTranscoder
					if err := hf.GetTypedConfig().UnmarshalTo(&t); err == nil {
						out = append(out, &t)
					}
				}
			}
		}
	}
	return out, nil
}

func checkDescriptor(path string, services []string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return fmt.Errorf("%s is not a complete descriptor set (built with --include_imports?): %w", path, err)
	}
	for _, name := range services {
		d, err := files.FindDescriptorByName(protoreflectName(name))
		if err != nil {
			return fmt.Errorf("service %s is not in %s", name, path)
		}
		svc, ok := d.(interface{ Methods() protoMethods })
		if !ok {
			return fmt.Errorf("%s is not a service", name)
		}
		methods := svc.Methods()
		for i := 0; i < methods.Len(); i++ {
			m := methods.Get(i)
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil || rule.GetPattern() == nil {
				return fmt.Errorf("method %s has no google.api.http rule", m.FullName())
			}
			fmt.Printf("envoycheck: %s -> %v\n", m.FullName(), rule.GetPattern())
		}
	}
	return nil
}
