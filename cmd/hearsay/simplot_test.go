package main

import (
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearsay/hearsay/bench/epidemic"
)

// TestSimEpidemicPlot draws the comparison as SVG and PNG through the
// command and decodes both: the SVG must parse as XML and name every
// strategy in its text, the PNG must decode to a non-empty image.
func TestSimEpidemicPlot(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".svg", ".png"} {
		file := filepath.Join(dir, "epidemic"+ext)
		code := simMain([]string{"epidemic", "--nodes", "200", "--runs", "3", "--plot", file}, io.Discard, os.Stderr)
		if code != 0 {
			t.Fatalf("sim epidemic --plot %s: exit %d", file, code)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if ext == ".png" {
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
				t.Fatalf("%s: image is %v", file, b)
			}
			continue
		}
		var text strings.Builder
		dec := xml.NewDecoder(f)
		root := ""
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not valid XML: %v", file, err)
			}
			switch v := tok.(type) {
			case xml.StartElement:
				if root == "" {
					root = v.Name.Local
				}
			case xml.CharData:
				text.Write(v)
			}
		}
		if root != "svg" {
			t.Fatalf("%s: root element %q, want svg", file, root)
		}
		for _, s := range epidemicStrategies {
			if !strings.Contains(text.String(), s.mode+" "+s.direction) {
				t.Errorf("%s: no series %q in the legend", file, s.mode+" "+s.direction)
			}
		}
	}
}

func TestPlotRefusesOtherFormats(t *testing.T) {
	if err := plotEpidemic(epidemic.DefaultConfig(), filepath.Join(t.TempDir(), "x.jpg"), io.Discard); err == nil {
		t.Fatal("a .jpg plot was accepted")
	}
	if _, _, err := cutPlotFlag([]string{"--plot"}); err == nil {
		t.Fatal("--plot without a file was accepted")
	}
}

// TestSimClusterPlot draws a small config run and checks the SVG names
// both series; the PNG of the same must decode.
func TestSimClusterPlot(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".svg", ".png"} {
		file := filepath.Join(dir, "cluster"+ext)
		code := simMain([]string{"cluster", "--nodes", "20", "--scenario", "config", "--plot", file}, io.Discard, io.Discard)
		if code != 0 {
			t.Fatalf("sim cluster --plot %s: exit %d", file, code)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if ext == ".png" {
			if _, err := png.Decode(strings.NewReader(string(b))); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			continue
		}
		if err := xml.Unmarshal(b, new(struct {
			XMLName xml.Name `xml:"svg"`
		})); err != nil {
			t.Fatalf("%s is not an SVG document: %v", file, err)
		}
		for _, want := range []string{clusterWhat["config"], "bus bytes per node per second"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: no series %q", file, want)
			}
		}
	}
}
