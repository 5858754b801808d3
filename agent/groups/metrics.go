package groups

import (
	"fmt"
	"io"
)

// WriteMetrics writes the coordinator's gauges in Prometheus text format: groups by state,
// members, committed offsets and the member metadata bytes held (against their budget).
func (c *Coordinator) WriteMetrics(w io.Writer) {
	c.mu.Lock()
	var byState [len(stateNames)]int
	members, offsets := 0, 0
	for _, g := range c.groups {
		byState[g.state]++
		members += len(g.members)
		offsets += len(g.offsets)
	}
	meta := c.metaBytes
	c.unlock()
	fmt.Fprintf(w, "# HELP samsa_groups Consumer groups held, by state (max_groups caps the total).\n# TYPE samsa_groups gauge\n")
	for s, n := range byState {
		fmt.Fprintf(w, "samsa_groups{state=%q} %d\n", groupState(s).String(), n)
	}
	fmt.Fprintf(w, "# HELP samsa_group_members Members of all consumer groups.\n# TYPE samsa_group_members gauge\nsamsa_group_members %d\n", members)
	fmt.Fprintf(w, "# HELP samsa_group_committed_offsets Committed offsets held (one per group and partition).\n# TYPE samsa_group_committed_offsets gauge\nsamsa_group_committed_offsets %d\n", offsets)
	fmt.Fprintf(w, "# HELP samsa_group_metadata_bytes Member metadata and assignments held.\n# TYPE samsa_group_metadata_bytes gauge\nsamsa_group_metadata_bytes %d\n", meta)
	fmt.Fprintf(w, "# HELP samsa_group_metadata_budget_bytes The budget for samsa_group_metadata_bytes.\n# TYPE samsa_group_metadata_budget_bytes gauge\nsamsa_group_metadata_budget_bytes %d\n", c.opts.MaxMetadataBytes)
}
