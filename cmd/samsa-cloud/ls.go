package main

import (
	"context"
	"io"

	"github.com/samsa-io/samsa/cloud"
)

// runLs is "samsa-cloud ls": the catalog as a table or JSON.
func runLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", "ls --bucket B [--endpoint URL] [--prefix P] [--topic T] [--format table|json]", stdout)
	store := addStoreFlags(fs)
	topic := fs.String("topic", "", "list only this topic (default: every topic)")
	format := fs.String("format", "table", "output: table (one row per segment and a total per partition) or json (the manifests)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return usagef("ls", "--format %q: want table or json", *format)
	}
	a, err := store.open(ctx, "ls")
	if err != nil {
		return err
	}
	topics, err := a.Catalog(ctx, *topic)
	if err != nil {
		return err
	}
	if *format == "json" {
		return cloud.WriteCatalogJSON(stdout, topics)
	}
	if len(topics) == 0 {
		_, err := io.WriteString(stderr, "samsa-cloud: no archived topics in "+a.Location()+"\n")
		return err
	}
	return cloud.WriteCatalogTable(stdout, topics)
}
