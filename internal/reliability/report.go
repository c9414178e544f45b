// Package reliability holds the result of one fault-suite scenario, writes and
// reads it as JSON, and renders the scenario table of RELIABILITY.md.
package reliability

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Result is what one fault scenario measured. The e2e suite writes one JSON
// file per scenario; the reliability-report command turns them into a table.
type Result struct {
	// ID orders the rows, for example "03" or "06b".
	ID string `json:"id"`
	// Name is a short human title of the scenario.
	Name string `json:"name"`
	// Setting is the configuration the scenario ran with, for example
	// "INGEST_MIN_REPLICAS=2, down-after 1500 ms".
	Setting string `json:"setting"`
	// MinReplicas is INGEST_MIN_REPLICAS of the ingest containers.
	MinReplicas int `json:"min_replicas"`
	// LossAllowed marks a variant that is known to be unsafe (reported, not failed).
	LossAllowed bool `json:"loss_allowed"`

	Attempted     int `json:"attempted"`
	Acked         int `json:"acked"`
	Indeterminate int `json:"indeterminate"`
	Resent        int `json:"resent"`
	Read          int `json:"read"`
	Lost          int `json:"lost"`
	Unexpected    int `json:"unexpected"`
	// Recovered counts messages that were never acked but are stored.
	Recovered int `json:"recovered"`
	// Duplicates counts extra copies in the list; IllegalDuplicates those of
	// messages that were sent only once.
	Duplicates        int `json:"duplicates"`
	IllegalDuplicates int `json:"illegal_duplicates"`
	OrderViolations   int `json:"order_violations"`
	// ReplicaMismatch names replicas whose list differs from the master's.
	ReplicaMismatch []string `json:"replica_mismatch,omitempty"`

	// AcksResumeMS is the time from the fault to the first ack of a message
	// sent after the fault; -1 when acks never resumed during the run.
	AcksResumeMS int64 `json:"acks_resume_ms"`
	// AcksAfterHealMS is the time from the heal (the node started again, the
	// container unpaused, the partition lifted) to the first ack after it;
	// -1 when no ack came after the heal.
	AcksAfterHealMS int64 `json:"acks_after_heal_ms"`
	// MaxAckGapMS is the longest time without any ack after the fault.
	MaxAckGapMS int64 `json:"max_ack_gap_ms"`

	RateBefore float64 `json:"rate_before"`
	RateDuring float64 `json:"rate_during"`
	RateAfter  float64 `json:"rate_after"`

	// Disconnects counts why client connections ended ("ERR SHUTTING_DOWN", "EOF", "reset", ...).
	Disconnects map[string]int `json:"disconnects,omitempty"`
	// Notes holds scenario-specific observations (memory, roles, expectations).
	Notes []string `json:"notes,omitempty"`

	Pass      bool      `json:"pass"`
	Failures  []string  `json:"failures,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"seconds"`
}

// FileName is the name Result is written under in the output directory.
func (r Result) FileName() string {
	return "scenario-" + r.ID + ".json"
}

// Write stores r as indented JSON in dir, creating dir if needed.
func Write(dir string, r Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result %s: %w", r.ID, err)
	}
	path := filepath.Join(dir, r.FileName())
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result %s: %w", path, err)
	}
	return nil
}

// Load reads every scenario-*.json in dir, sorted by ID.
func Load(dir string) ([]Result, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "scenario-*.json"))
	if err != nil {
		return nil, fmt.Errorf("list results in %s: %w", dir, err)
	}
	var (
		out  []Result
		errs []error
	)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read result %s: %w", p, err))
			continue
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, fmt.Errorf("decode result %s: %w", p, err))
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, errors.Join(errs...)
}

// Table renders results as a markdown table, one row per scenario.
func Table(results []Result) string {
	var b strings.Builder
	b.WriteString("| # | scenario | setting | attempted | acked | lost | unexpected | duplicates (of msgs sent once) | acks resume after the fault | first ack after the heal | acked msgs/s before / during / after | verdict |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d (%d) | %s | %s | %.0f / %.0f / %.0f | %s |\n",
			r.ID, cell(r.Name), cell(r.Setting), r.Attempted, r.Acked, r.Lost, r.Unexpected,
			r.Duplicates, r.IllegalDuplicates, resume(r.AcksResumeMS), resume(r.AcksAfterHealMS),
			r.RateBefore, r.RateDuring, r.RateAfter, verdict(r))
	}
	return b.String()
}

func resume(ms int64) string {
	if ms < 0 {
		return "not during run"
	}
	return fmt.Sprintf("%.2f s", float64(ms)/1000)
}

func verdict(r Result) string {
	switch {
	case r.Pass:
		return "pass"
	case r.LossAllowed:
		return "unsafe setting: " + cell(strings.Join(r.Failures, "; "))
	default:
		return "**FAIL**: " + cell(strings.Join(r.Failures, "; "))
	}
}

// cell keeps a value from breaking the table row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}

// Markers delimit the generated part of RELIABILITY.md.
const (
	BeginMarker = "<!-- BEGIN reliability-table (generated by make reliability-report; do not edit) -->"
	EndMarker   = "<!-- END reliability-table -->"
)

// Splice replaces the text between BeginMarker and EndMarker in doc with table.
func Splice(doc, table string) (string, error) {
	start := strings.Index(doc, BeginMarker)
	end := strings.Index(doc, EndMarker)
	switch {
	case start < 0 || end < 0:
		return "", fmt.Errorf("splice table: markers %q and %q not both found", BeginMarker, EndMarker)
	case end < start:
		return "", fmt.Errorf("splice table: end marker before begin marker")
	}
	return doc[:start+len(BeginMarker)] + "\n" + table + doc[end:], nil
}
