package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func defaults() Params {
	return Params{Epochs: DefaultEpochs, LearningRate: DefaultLearningRate, Samples: DefaultSamples, Hidden: DefaultHidden}
}

// trainRun trains p and returns the model and the epochs it reported.
func trainRun(t *testing.T, p Params, seed string) (*Model, []Epoch) {
	t.Helper()
	var epochs []Epoch
	m, err := Train(context.Background(), p, TrainOptions{Seed: seed, OnEpoch: func(_ context.Context, e Epoch) error {
		epochs = append(epochs, e)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != p.Epochs || m.Epochs != p.Epochs {
		t.Fatalf("%d epochs reported, model says %d, want %d", len(epochs), m.Epochs, p.Epochs)
	}
	for i, e := range epochs {
		if e.Epoch != i+1 || !finite(e.Loss) || e.Loss < 0 || e.Accuracy < 0 || e.Accuracy > 1 {
			t.Fatalf("epoch %d: %+v", i+1, e)
		}
	}
	return m, epochs
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func TestDefaultsLearnTheMoons(t *testing.T) {
	m, epochs := trainRun(t, defaults(), "moons")
	first, last := epochs[0], epochs[len(epochs)-1]
	if last.Loss >= first.Loss*0.6 {
		t.Fatalf("loss went from %v to %v", first.Loss, last.Loss)
	}
	// A line cannot separate the moons (about 87%); the hidden layer can.
	if m.Accuracy < 0.93 || m.TestAccuracy < 0.92 {
		t.Fatalf("accuracy %v, test accuracy %v", m.Accuracy, m.TestAccuracy)
	}
	if m.Type != "mlp" || m.Activation != "tanh" || len(m.W1) != 8 || len(m.B1) != 8 || len(m.W2) != 8 {
		t.Fatalf("model shape: %s %s w1 %d b1 %d w2 %d", m.Type, m.Activation, len(m.W1), len(m.B1), len(m.W2))
	}
	if m.Dataset.Train != 1600 || m.Dataset.Test != 400 || m.Dataset.Name != DatasetName {
		t.Fatalf("dataset %+v", m.Dataset)
	}
}

func TestLogisticRegression(t *testing.T) {
	p := defaults()
	p.Hidden = 0
	m, epochs := trainRun(t, p, "moons")
	if m.Type != "logistic-regression" || m.W1 != nil || m.B1 != nil || len(m.W2) != 2 {
		t.Fatalf("model shape: %s w1 %v b1 %v w2 %v", m.Type, m.W1, m.B1, m.W2)
	}
	if epochs[len(epochs)-1].Loss >= epochs[0].Loss {
		t.Fatalf("loss went from %v to %v", epochs[0].Loss, epochs[len(epochs)-1].Loss)
	}
	if m.TestAccuracy < 0.8 || m.TestAccuracy > 0.95 {
		t.Fatalf("a line separates %v of the moons", m.TestAccuracy)
	}
}

// blobs are two separable clusters.
func blobs(n int) []Sample {
	r := rng("blobs")
	out := make([]Sample, n)
	for i := range out {
		c := float64(i % 2)
		out[i] = Sample{X: [2]float64{4*c - 2 + 0.5*r.NormFloat64(), 1 - 2*c + 0.5*r.NormFloat64()}, Y: c}
	}
	return out
}

func TestLossGoesDownOnSeparableData(t *testing.T) {
	for _, hidden := range []int{0, 4} {
		data := blobs(400)
		var losses []float64
		p := Params{Epochs: 20, LearningRate: 0.05, Hidden: hidden}
		m, err := fit(context.Background(), data[80:], data[:80], p, TrainOptions{OnEpoch: func(_ context.Context, e Epoch) error {
			losses = append(losses, e.Loss)
			return nil
		}}, rng("fit"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 5; i < len(losses); i += 5 {
			if losses[i] >= losses[i-5] {
				t.Fatalf("hidden %d: loss did not go down: %v", hidden, losses)
			}
		}
		if m.Accuracy < 0.99 || m.TestAccuracy < 0.99 {
			t.Fatalf("hidden %d: accuracy %v, test %v on separable data", hidden, m.Accuracy, m.TestAccuracy)
		}
	}
}

func TestDeterministic(t *testing.T) {
	p := defaults()
	p.Epochs = 5
	a, _ := trainRun(t, p, "same")
	b, _ := trainRun(t, p, "same")
	c, _ := trainRun(t, p, "other")
	a.Seconds, b.Seconds, c.Seconds = 0, 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	jc, _ := json.Marshal(c)
	if string(ja) != string(jb) {
		t.Fatal("one seed trained two different models")
	}
	if string(ja) == string(jc) {
		t.Fatal("two seeds trained the same model")
	}
}

func TestModelJSON(t *testing.T) {
	m, _ := trainRun(t, defaults(), "json")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Model
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"type":"mlp"`, `"w1":[[`, `"b1":[`, `"w2":[`, `"b2":`, `"params":{"epochs":60,"learningRate":0.1,"samples":2000,"hidden":8}`, `"testAccuracy":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("no %s in %s", k, b)
		}
	}
	// The decoded model classifies the moons as the trained one does.
	data := TwoMoons(rng("held out"), 1000, Noise)
	agree, right := 0, 0
	for _, s := range data {
		p := back.Predict(s.X[0], s.X[1])
		if (p >= 0.5) == (m.Predict(s.X[0], s.X[1]) >= 0.5) {
			agree++
		}
		if (p >= 0.5) == (s.Y == 1) {
			right++
		}
	}
	if agree != len(data) || float64(right)/float64(len(data)) < 0.9 {
		t.Fatalf("decoded model agrees on %d of %d points, right on %d", agree, len(data), right)
	}
	if len(b) > 16<<10 {
		t.Fatalf("model of 8 units is %d bytes of JSON", len(b))
	}
}

func TestHugeLearningRate(t *testing.T) {
	// The schema stops it; Train refuses it as well.
	p := defaults()
	p.LearningRate = 1e6
	if _, err := Train(context.Background(), p, TrainOptions{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("learning rate 1e6: %v", err)
	}
	p.LearningRate = math.NaN()
	if _, err := Train(context.Background(), p, TrainOptions{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("learning rate NaN: %v", err)
	}

	// The largest rate the schema allows trains a finite model.
	p = defaults()
	p.LearningRate = MaxLearningRate
	p.Hidden = MaxHidden
	m, _ := trainRun(t, p, "fast")
	if _, err := json.Marshal(m); err != nil {
		t.Fatalf("model of the largest learning rate: %v", err)
	}

	// Past the bounds the clipped steps still overflow: the run fails with
	// ErrDiverged and never hands out NaN.
	data := TwoMoons(rng("x"), 500, Noise)
	for _, lr := range []float64{1e6, 1e300, math.Inf(1)} {
		for _, hidden := range []int{0, 8} {
			m, err := fit(context.Background(), data[100:], data[:100], Params{Epochs: 50, LearningRate: lr, Hidden: hidden}, TrainOptions{
				OnEpoch: func(_ context.Context, e Epoch) error {
					if !finite(e.Loss) || !finite(e.Accuracy) {
						t.Errorf("lr %v: epoch %+v", lr, e)
					}
					return nil
				},
			}, rng("w"))
			if err == nil {
				if math.IsInf(lr, 1) {
					t.Fatalf("hidden %d: an infinite learning rate trained a model", hidden)
				}
				if _, jerr := json.Marshal(m); jerr != nil {
					t.Fatalf("lr %v hidden %d: a model that is not JSON: %v", lr, hidden, jerr)
				}
				continue
			}
			if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "learning rate") {
				t.Fatalf("lr %v hidden %d: %v", lr, hidden, err)
			}
		}
	}
}

func TestCancelBetweenEpochs(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := errors.New("stopped by the test")
	seen := 0
	_, err := Train(ctx, defaults(), TrainOptions{OnEpoch: func(_ context.Context, e Epoch) error {
		seen = e.Epoch
		if e.Epoch == 3 {
			cancel(stop)
		}
		return nil
	}})
	if !errors.Is(err, stop) || seen != 3 {
		t.Fatalf("err %v after %d epochs, want the cause after 3", err, seen)
	}

	// A cancelled context stops a large epoch between mini-batches.
	ctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	p := Params{Epochs: MaxEpochs, LearningRate: 0.1, Samples: MaxSamples, Hidden: MaxHidden}
	_, err = Train(ctx, p, TrainOptions{OnEpoch: func(context.Context, Epoch) error {
		t.Error("an epoch ended on a cancelled context")
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func TestCallbackErrorAndPace(t *testing.T) {
	boom := errors.New("boom")
	if _, err := Train(context.Background(), defaults(), TrainOptions{OnEpoch: func(context.Context, Epoch) error { return boom }}); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	// A pace far longer than the test may take: only the cancel ends it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Train(ctx, defaults(), TrainOptions{Pace: time.Hour, OnEpoch: func(context.Context, Epoch) error {
			cancel()
			return nil
		}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Train did not stop on cancel while pacing")
	}
}

func TestInvalidParams(t *testing.T) {
	for _, p := range []Params{
		{Epochs: 0, LearningRate: 0.1, Samples: 100},
		{Epochs: 501, LearningRate: 0.1, Samples: 100},
		{Epochs: 1, LearningRate: 0.00001, Samples: 100},
		{Epochs: 1, LearningRate: 0.1, Samples: 99},
		{Epochs: 1, LearningRate: 0.1, Samples: 100_001},
		{Epochs: 1, LearningRate: 0.1, Samples: 100, Hidden: -1},
		{Epochs: 1, LearningRate: 0.1, Samples: 100, Hidden: 65},
	} {
		if _, err := Train(context.Background(), p, TrainOptions{}); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%+v: err %v", p, err)
		}
	}
}

func BenchmarkTrainDefaults(b *testing.B) {
	for b.Loop() {
		if _, err := Train(context.Background(), defaults(), TrainOptions{Seed: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
