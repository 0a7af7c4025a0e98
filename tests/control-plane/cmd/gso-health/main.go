// Command gso-health judges an object the way GitOps tools do, from its JSON
// (as the apiserver serves it) on stdin, and prints {"status":…,"message":…}:
//
//	gso-health lua <health.lua>  Argo CD: a health script from argocd-cm (lua.go)
//	gso-health kstatus           Flux and kpt: kstatus' status.Compute
//
// The integration tests (tests/it/health.rs) run it on objects the real
// operator wrote; build.sh builds it into target/control-plane/bin.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] == "lua") != (len(os.Args) == 3) || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: gso-health lua <script> < obj.json | gso-health kstatus < obj.json")
		os.Exit(2)
	}
	res, err := run(os.Args[1], os.Args[2:], os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gso-health %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(mode string, args []string, stdin io.Reader) (result, error) {
	obj, err := readObject(stdin)
	if err != nil {
		return result{}, err
	}
	switch mode {
	case "lua":
		script, err := os.ReadFile(args[0])
		if err != nil {
			return result{}, err
		}
		return argoHealth(obj, string(script))
	case "kstatus":
		res, err := status.Compute(obj)
		if err != nil {
			return result{}, err
		}
		return result{Status: res.Status.String(), Message: res.Message}, nil
	}
	return result{}, fmt.Errorf("unknown mode %q", mode)
}

// readObject decodes as apimachinery's unstructured JSON does (whole numbers
// become int64, JSON null nil): what both tools get from their clients.
func readObject(r io.Reader) (*unstructured.Unstructured, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	if obj == nil {
		return nil, fmt.Errorf("reading the object: not a JSON object")
	}
	return &unstructured.Unstructured{Object: obj}, nil
}
