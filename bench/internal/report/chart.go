package report

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	red    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	grey   = color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
)

// WriteChart writes a PNG with two panels: acked msgs/s per mode and ingest
// count against the ceiling, and p99 latency per mode at full and half load.
func WriteChart(path string, r Results) error {
	var labels []string
	var tput, p99Full, p99Half plotter.Values
	for _, m := range r.Modes {
		labels = append(labels, fmt.Sprintf("min=%d", m.MinReplicas))
		tput = append(tput, m.Full.Load.MsgsPerSec/1e3)
		p99Full = append(p99Full, m.Full.Load.LatencyP99/1e3)
		p99Half = append(p99Half, m.Half.Load.LatencyP99/1e3)
	}
	for _, s := range r.Scale {
		labels = append(labels, fmt.Sprintf("%d×ingest", s.Ingests))
		tput = append(tput, s.Run.Load.MsgsPerSec/1e3)
	}

	left := plot.New()
	left.Title.Text = fmt.Sprintf("acked msgs/s (k), %d×%d B, %d conns", r.Messages, r.Size, r.Conns)
	left.Y.Label.Text = "thousand msgs/s"
	left.Y.Min = 0
	bars, err := plotter.NewBarChart(tput, vg.Points(22))
	if err != nil {
		return fmt.Errorf("throughput bars: %w", err)
	}
	bars.Color = blue
	bars.LineStyle.Width = 0
	left.Add(bars)
	if r.Ceiling > 0 {
		ceil, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: r.Ceiling / 1e3}, {X: float64(len(tput)) - 0.5, Y: r.Ceiling / 1e3}})
		if err != nil {
			return fmt.Errorf("ceiling line: %w", err)
		}
		ceil.Color = red
		ceil.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		half, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: r.Ceiling / 2e3}, {X: float64(len(tput)) - 0.5, Y: r.Ceiling / 2e3}})
		if err != nil {
			return fmt.Errorf("half-ceiling line: %w", err)
		}
		half.Color = grey
		half.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		left.Add(ceil, half)
		left.Legend.Add("redis-benchmark ceiling", ceil)
		left.Legend.Add("50% of ceiling", half)
		left.Legend.Top = true
		top := r.Ceiling / 1e3
		for _, v := range tput {
			top = max(top, v)
		}
		left.Y.Max = top * 1.15
	}
	left.NominalX(labels...)

	right := plot.New()
	right.Title.Text = "ack latency p99 (ms)"
	right.Y.Label.Text = "ms"
	right.Y.Min = 0
	full, err := plotter.NewBarChart(p99Full, vg.Points(16))
	if err != nil {
		return fmt.Errorf("p99 bars: %w", err)
	}
	full.Color = blue
	full.LineStyle.Width = 0
	full.Offset = -vg.Points(8)
	halfBars, err := plotter.NewBarChart(p99Half, vg.Points(16))
	if err != nil {
		return fmt.Errorf("p99 bars: %w", err)
	}
	halfBars.Color = orange
	halfBars.LineStyle.Width = 0
	halfBars.Offset = vg.Points(8)
	right.Add(full, halfBars)
	topP99 := 0.0
	for _, v := range append(append(plotter.Values{}, p99Full...), p99Half...) {
		topP99 = max(topP99, v)
	}
	right.Y.Max = topP99 * 1.3 // room for the legend
	right.Legend.Add("full load", full)
	right.Legend.Add("50% of peak", halfBars)
	right.Legend.Top = true
	right.NominalX(labels[:len(r.Modes)]...)

	const width, height = 12 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	footer := vg.Points(18)
	caption := fmt.Sprintf("sluice bench %s, commit %s, %s", r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Commit, r.Machine)
	font := plot.DefaultFont
	font.Size = vg.Points(10)
	sty := draw.TextStyle{Color: color.Black, Font: font, Handler: plot.DefaultTextHandler, XAlign: draw.XCenter}
	dc.FillText(sty, vg.Point{X: width / 2, Y: vg.Points(4)}, caption)
	body := draw.Crop(dc, 0, 0, footer, 0)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadY: vg.Points(10), PadTop: vg.Points(6), PadBottom: vg.Points(4), PadLeft: vg.Points(6), PadRight: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, body)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
