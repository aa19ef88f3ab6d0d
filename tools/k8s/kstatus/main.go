// Command kstatus-judge reads Kubernetes objects as JSON on standard input (one object, or a
// List such as `kubectl get -o json` prints) and prints one line per object:
//
//	<namespace>/<name> <status> <message>
//
// where <status> is what sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute says (Current,
// InProgress, Failed, Terminating, NotFound, Unknown) — the same verdict Flux and kpt use.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read standard input: %v", err)
	}
	var object unstructured.Unstructured
	// apimachinery's json keeps integers int64, as the accessors kstatus uses require.
	if err := json.Unmarshal(input, &object.Object); err != nil {
		fail("parse standard input as a JSON object: %v", err)
	}
	items := []unstructured.Unstructured{object}
	if object.IsList() {
		list, err := object.ToList()
		if err != nil {
			fail("read the list: %v", err)
		}
		items = list.Items
	}
	for i := range items {
		result, err := status.Compute(&items[i])
		if err != nil {
			fail("compute the status of %s/%s: %v", items[i].GetNamespace(), items[i].GetName(), err)
		}
		fmt.Printf("%s/%s %s %s\n", items[i].GetNamespace(), items[i].GetName(), result.Status, result.Message)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus-judge: "+format+"\n", args...)
	os.Exit(1)
}
