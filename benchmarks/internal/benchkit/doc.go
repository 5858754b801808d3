// Package benchkit is what the benchmark programs under benchmarks/ share, so that each keeps
// only what it measures:
//
//   - the program around run: Main (signals, exit codes), BytesVar (size flags), WorkDir, Logf;
//   - where it ran: Machine (CPU model, kernel, memory, Go, revision, load average) and
//     FilesystemOf;
//   - what processes used: ProcCPU, TakeCPU and CPUSnapshot.Since for CPU time, ReadProcMemory
//     and MemSampler for resident memory, all from /proc;
//   - the servers under test: BuildSamsa and StartAgent for a `samsa agent` child process;
//   - the report: FormatInt, FormatBytes, Plural, MiB, Median and WriteJSON;
//   - the smoke tests: RunSmoke, CheckOutput, ReadJSON and RequireTool.
//
// The numbers and tables are the benchmarks' own; nothing here decides what is measured.
package benchkit
