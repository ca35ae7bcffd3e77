// Package k8s holds the Kubernetes manifests of dist_test; its test checks
// them without a cluster or kubectl.
package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dist-test/dist_test/internal/config"
)

// object is one manifest document, as JSON would decode it.
type object map[string]any

func (o object) get(path ...string) any {
	var v any = map[string]any(o)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func (o object) str(path ...string) string { s, _ := o.get(path...).(string); return s }

func (o object) id() string { return o.str("kind") + "/" + o.str("metadata", "name") }

// load reads every document of the manifests in this folder.
func load(t *testing.T) map[string][]object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]object{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var o object
			if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			out[f] = append(out[f], o)
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for l := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// kinds are the apiVersion of each kind the manifests may use.
var kinds = map[string]string{
	"Namespace": "v1", "Secret": "v1", "Service": "v1", "Deployment": "apps/v1",
	"Kustomization": "kustomize.config.k8s.io/v1beta1", "ScaledObject": "keda.sh/v1alpha1",
}

// The manifests parse, each document is a known kind with its apiVersion
// and a DNS-1123 name; Deployments select their own pods, run dist_test's
// server commands with probes on ports they declare; Services select a
// Deployment's pods and target its ports; every Secret mounted exists;
// kustomization.yaml lists every manifest but the optional KEDA one, and
// that one scales the slaves' Deployment.
func TestManifests(t *testing.T) {
	files := load(t)
	byID := map[string]object{}
	var all []object
	for f, docs := range files {
		for _, o := range docs {
			kind, api := o.str("kind"), o.str("apiVersion")
			if want, ok := kinds[kind]; !ok || api != want {
				t.Errorf("%s: kind %q apiVersion %q: unknown, or not %q", f, kind, api, want)
			}
			name := o.str("metadata", "name")
			if kind != "Kustomization" && !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(name) {
				t.Errorf("%s: %s: name %q is not DNS-1123", f, kind, name)
			}
			if byID[o.id()] != nil {
				t.Errorf("%s: %s twice", f, o.id())
			}
			byID[o.id()] = o
			all = append(all, o)
		}
	}
	for _, want := range []string{"Deployment/dist-test-master", "Service/dist-test-master", "Deployment/dist-test-isolate",
		"Service/dist-test-isolate", "Deployment/dist-test-slave", "ScaledObject/dist-test-slave", "Secret/dist-test-config",
		"Secret/dist-test-slave-config"} {
		if byID[want] == nil {
			t.Errorf("no %s", want)
		}
	}
	for _, o := range all {
		switch o.str("kind") {
		case "Deployment":
			checkDeployment(t, o, byID)
		case "Service":
			checkService(t, o, all)
		}
	}
	k := files["kustomization.yaml"]
	if len(k) != 1 {
		t.Fatalf("kustomization.yaml: %d documents", len(k))
	}
	var listed []string
	for _, r := range k[0].get("resources").([]any) {
		listed = append(listed, r.(string))
	}
	for f := range files {
		want := f != "kustomization.yaml" && f != "keda-scaledobject.yaml"
		if slices.Contains(listed, f) != want {
			t.Errorf("kustomization.yaml resources %v: %s listed %v, want %v", listed, f, !want, want)
		}
	}
	if so := byID["ScaledObject/dist-test-slave"]; so != nil {
		if target := so.str("spec", "scaleTargetRef", "name"); byID["Deployment/"+target] == nil {
			t.Errorf("the ScaledObject scales %q, not a Deployment here", target)
		}
	}
}

func checkDeployment(t *testing.T, d object, byID map[string]object) {
	t.Helper()
	id := d.id()
	sel, _ := d.get("spec", "selector", "matchLabels").(map[string]any)
	labels, _ := d.get("spec", "template", "metadata", "labels").(map[string]any)
	if len(sel) == 0 || !subset(sel, labels) {
		t.Errorf("%s: selector %v does not select its pods %v", id, sel, labels)
	}
	containers, _ := d.get("spec", "template", "spec", "containers").([]any)
	if len(containers) == 0 {
		t.Fatalf("%s: no containers", id)
	}
	volumes := map[string]object{}
	for _, v := range asList(d.get("spec", "template", "spec", "volumes")) {
		volumes[v.str("name")] = v
		if s := v.str("secret", "secretName"); s != "" && byID["Secret/"+s] == nil {
			t.Errorf("%s: volume %s mounts Secret %s, which is not here", id, v.str("name"), s)
		}
	}
	for _, c := range asList(containers) {
		if c.str("name") == "" || c.str("image") == "" {
			t.Errorf("%s: a container without name or image", id)
		}
		args := asStrings(c.get("args"))
		if len(args) == 0 || !slices.Contains([]string{"master", "slave", "isolate-server"}, args[0]) {
			t.Errorf("%s: args %v: not a dist_test server command", id, args)
		}
		ports := map[string]bool{}
		for _, p := range asList(c.get("ports")) {
			ports[p.str("name")] = true
			ports[fmt.Sprint(p.get("containerPort"))] = true
		}
		for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
			got := c.str(probe, "httpGet", "path")
			port := fmt.Sprint(c.get(probe, "httpGet", "port"))
			if got != path || !ports[port] {
				t.Errorf("%s: %s asks %s on port %s; want %s on a declared port", id, probe, got, port, path)
			}
		}
		for _, m := range asList(c.get("volumeMounts")) {
			if volumes[m.str("name")] == nil {
				t.Errorf("%s: mounts volume %s, which is not declared", id, m.str("name"))
			}
		}
	}
}

func checkService(t *testing.T, s object, all []object) {
	t.Helper()
	sel, _ := s.get("spec", "selector").(map[string]any)
	var target object
	for _, o := range all {
		labels, _ := o.get("spec", "template", "metadata", "labels").(map[string]any)
		if o.str("kind") == "Deployment" && len(sel) > 0 && subset(sel, labels) {
			target = o
		}
	}
	if target == nil {
		t.Errorf("%s: selector %v selects no Deployment's pods", s.id(), sel)
		return
	}
	names := map[string]bool{}
	for _, c := range asList(target.get("spec", "template", "spec", "containers")) {
		for _, p := range asList(c.get("ports")) {
			names[p.str("name")] = true
		}
	}
	for _, p := range asList(s.get("spec", "ports")) {
		if tp := fmt.Sprint(p.get("targetPort")); !names[tp] {
			t.Errorf("%s: targetPort %s is no port of %s", s.id(), tp, target.id())
		}
	}
}

func subset(a, b map[string]any) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func asList(v any) []object {
	var out []object
	l, _ := v.([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, object(m))
		}
	}
	return out
}

func asStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// The configurations in the Secrets are valid dist_test configurations
// (Load validates them), and the ports the pods declare are those the
// configurations serve on.
func TestManifestConfigs(t *testing.T) {
	files := load(t)
	ports := map[string]string{} // Deployment → its container ports, as "name=port"
	for _, o := range files["master.yaml"] {
		ports[o.id()] = portsOf(o)
	}
	for _, o := range files["slave.yaml"] {
		ports[o.id()] = portsOf(o)
	}
	for _, o := range files["isolate.yaml"] {
		ports[o.id()] = portsOf(o)
	}
	cfgs := map[string]*config.Config{}
	for _, s := range files["config.yaml"] {
		data, _ := s.get("stringData").(map[string]any)
		for name, text := range data {
			p := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(p, []byte(text.(string)), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(p, func(k string) string {
				if k == "HOME" {
					return t.TempDir()
				}
				return ""
			})
			if err != nil {
				t.Fatalf("%s of Secret %s: %v", name, s.str("metadata", "name"), err)
			}
			cfgs[name] = c
		}
	}
	server, slave := cfgs["dist_test.cnf"], cfgs["slave.cnf"]
	if server == nil || slave == nil {
		t.Fatalf("want dist_test.cnf and slave.cnf in the Secrets, have %v", cfgs)
	}
	for _, c := range []struct{ deploy, listen string }{
		{"Deployment/dist-test-master", server.Master.Listen},
		{"Deployment/dist-test-isolate", server.Isolate.Listen},
		{"Deployment/dist-test-slave", slave.Slave.MetricsListen},
	} {
		_, port, _ := strings.Cut(c.listen, ":")
		if !strings.Contains(ports[c.deploy], "="+port+" ") || !strings.HasPrefix(c.listen, "0.0.0.0:") {
			t.Errorf("%s declares ports %q; its configuration serves on %q (all addresses wanted)", c.deploy, ports[c.deploy], c.listen)
		}
	}
	if server.DistTest.Master != "http://dist-test-master:8081" || slave.DistTest.Master != server.DistTest.Master {
		t.Errorf("[dist_test] master: %q and %q, want the master's Service", server.DistTest.Master, slave.DistTest.Master)
	}
	if slave.Slave.Token != server.Slave.Token {
		t.Error("the slaves' token differs between the two configurations")
	}
	if slave.MySQL.Password != "" || slave.AWS.SecretKey != "" {
		t.Error("the slaves' configuration holds database or S3 credentials")
	}
}

func portsOf(d object) string {
	var b strings.Builder
	for _, c := range asList(d.get("spec", "template", "spec", "containers")) {
		for _, p := range asList(c.get("ports")) {
			fmt.Fprintf(&b, "%s=%v ", p.str("name"), p.get("containerPort"))
		}
	}
	return b.String()
}
