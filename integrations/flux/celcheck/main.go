// celcheck evaluates Flux healthCheckExprs on one object, the way kustomize-controller
// does: each expression is parsed (not type-checked) with cel-go, and the object's
// top-level fields (metadata, spec, status) are its variables.
//
// stdin: {"exprs": {"current": "...", ...}, "object": {...}}
// stdout: {"current": true, "failed": false, ...}; an expression that cannot be
// evaluated (a missing field) gives its error as a string.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
)

type input struct {
	Exprs  map[string]string `json:"exprs"`
	Object map[string]any    `json:"object"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail(err)
	}
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		fail(err)
	}
	out := map[string]any{}
	for name, expr := range in.Exprs {
		parsed, issues := env.Parse(expr)
		if issues != nil && issues.Err() != nil {
			fail(fmt.Errorf("%s: %w", name, issues.Err()))
		}
		program, err := env.Program(parsed)
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
		value, _, err := program.Eval(in.Object)
		if err != nil {
			out[name] = err.Error()
			continue
		}
		out[name] = value.Value()
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
