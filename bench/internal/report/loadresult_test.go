package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-ingest/sluice/internal/loadresult"
)

// TestLoadgenResultRoundTrips: a loadgen result with every field set, as
// loadgen -json prints it, is what results.json holds for the run after the
// bench reads it (the runner decodes loadgen's stdout the same way) and
// Render reads results.json back.
func TestLoadgenResultRoundTrips(t *testing.T) {
	in := filled(t)
	printed, err := json.Marshal(in) // loadgen -json: json.Encoder of the result
	if err != nil {
		t.Fatal(err)
	}
	var read loadresult.Result
	if err := json.Unmarshal(printed, &read); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res := Results{Modes: []Mode{{MinReplicas: 1, Full: Run{Load: read}, Half: Run{Load: read}}}}
	if err := WriteFiles(dir, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Modes) != 1 || !reflect.DeepEqual(back.Modes[0].Full.Load, in) {
		t.Errorf("results.json run:\n got %+v\nwant %+v", back.Modes, in)
	}
}

// filled is a result with every field set to a distinct non-zero value, so
// that a field added to loadgen's result is covered too.
func filled(t *testing.T) loadresult.Result {
	t.Helper()
	var r loadresult.Result
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("s" + v.Type().Field(i).Name)
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"refused (conns 0-3)"}))
		default:
			t.Fatalf("field %s: kind %s not filled", v.Type().Field(i).Name, f.Kind())
		}
	}
	return r
}
