// deploycheck validates the deployment files with the libraries Docker itself uses:
//
//	deploycheck compose FILE     load FILE as `docker compose config` does (compose-go: the
//	                             compose-spec schema, interpolation, normalisation) and print
//	                             the resulting model as JSON
//	deploycheck dockerfile FILE  parse FILE and run the checks of `docker build --check`
//	                             (BuildKit's linter); print each warning, exit 1 if any
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/opencontainers/go-digest"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck compose|dockerfile FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "compose":
		err = compose(os.Args[2])
	case "dockerfile":
		err = dockerfile(os.Args[2])
	default:
		err = fmt.Errorf("unknown check %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func compose(path string) error {
	ctx := context.Background()
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)), cli.WithOsEnv, cli.WithName("shibuya"))
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(ctx)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// offline resolves no image: the checks are of the Dockerfile, not of its base images' configs.
type offline struct{}

func (offline) ResolveImageConfig(context.Context, string, sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return "", "", nil, errors.New("offline: base images are not resolved")
}

func dockerfile(path string) error {
	dt, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	source := llb.NewSourceMap(nil, path, "", dt)
	if source.Definition, err = llb.Scratch().Marshal(ctx); err != nil {
		return err
	}
	results, err := dockerfile2llb.DockerfileLint(ctx, dt,
		dockerfile2llb.ConvertOpt{Config: dockerui.Config{}, SourceMap: source,
			MetaResolver: offline{}})
	if err != nil {
		return err
	}
	for _, w := range results.Warnings {
		line := 0
		if len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s (%s)\n", path, line, w.RuleName, w.Detail, w.URL)
	}
	if len(results.Warnings) > 0 {
		return fmt.Errorf("%d warning(s)", len(results.Warnings))
	}
	return nil
}
