// Package train is taskwire's "train" kind: a small model trained in pure Go
// on a generated dataset, written only with the public worker SDK.
//
// The dataset is "two moons": two interleaved half circles of points with
// Gaussian noise, drawn from a generator seeded with the task id (a retry
// trains the same model). A line cannot separate them, so a logistic
// regression (hidden = 0) stops below 90% accuracy, while a network with one
// hidden layer of tanh units bends its boundary around the moons. Training is
// mini-batch gradient descent on the cross-entropy, with the gradient's norm
// clipped; after every epoch the caller gets the epoch's loss and accuracy,
// and the result is the model itself, as JSON.
//
// Train is the training as a pure function of its parameters and seed;
// Register makes it a kind of a worker.
package train

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"
)

// Dataset constants.
const (
	// DatasetName names the generated dataset in the model.
	DatasetName = "two-moons"
	// Noise is the standard deviation of the noise added to the points.
	Noise = 0.2
	// BatchSize is the number of samples of one step of gradient descent.
	BatchSize = 32
	// ClipNorm bounds the norm of one step's gradient, so that a large
	// learning rate overshoots but does not blow the weights up.
	ClipNorm = 5.0
)

// ErrDiverged is the error of a training run whose loss or weights stopped
// being finite numbers; a smaller learning rate is the fix.
var ErrDiverged = errors.New("train: the training diverged")

// Epoch is what one epoch of training achieved, as streamed to browsers.
type Epoch struct {
	// Epoch is the epoch's number, from 1.
	Epoch int `json:"epoch"`
	// Loss is the mean cross-entropy over the training set during the epoch.
	Loss float64 `json:"loss"`
	// Accuracy is the share of the training set classified right during the
	// epoch, from 0 to 1.
	Accuracy float64 `json:"accuracy"`
}

// DatasetInfo describes the data a model was trained on.
type DatasetInfo struct {
	// Name is the dataset's generator (DatasetName).
	Name string `json:"name"`
	// Seed is the seed it was drawn from.
	Seed string `json:"seed"`
	// Noise is the standard deviation of the noise.
	Noise float64 `json:"noise"`
	// Train and Test are the sizes of the training and test sets.
	Train int `json:"train"`
	Test  int `json:"test"`
}

// Model is a trained model: a logistic regression or a network with one
// hidden layer, with its weights and how well it does. Inputs are
// standardised with Mean and Std before they reach the weights.
type Model struct {
	// Type is "logistic-regression" or "mlp".
	Type string `json:"type"`
	// Inputs is the number of input features (2: the point's coordinates).
	Inputs int `json:"inputs"`
	// Hidden is the number of hidden units (0 for a logistic regression).
	Hidden int `json:"hidden"`
	// Activation is the hidden units' function ("tanh"; empty without them).
	Activation string `json:"activation,omitempty"`
	// Output is the output unit's function ("sigmoid": the probability of
	// class 1).
	Output string `json:"output"`
	// Mean and Std standardise the inputs: x' = (x - Mean) / Std.
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
	// W1 are the hidden layer's weights, one row of Inputs per unit, and B1
	// its biases (absent for a logistic regression).
	W1 [][]float64 `json:"w1,omitempty"`
	B1 []float64   `json:"b1,omitempty"`
	// W2 are the output unit's weights (one per hidden unit, or per input for
	// a logistic regression) and B2 its bias.
	W2 []float64 `json:"w2"`
	B2 float64   `json:"b2"`
	// Params are the parameters of the run; Dataset the data.
	Params  Params      `json:"params"`
	Dataset DatasetInfo `json:"dataset"`
	// Epochs is the number of epochs trained.
	Epochs int `json:"epochs"`
	// Loss and Accuracy are the final model's on the training set, TestLoss
	// and TestAccuracy on the test set, which it never trained on.
	Loss         float64 `json:"loss"`
	Accuracy     float64 `json:"accuracy"`
	TestLoss     float64 `json:"testLoss"`
	TestAccuracy float64 `json:"testAccuracy"`
	// Seconds is how long the training took.
	Seconds float64 `json:"seconds"`
}

// Predict returns the model's probability that the point (x, y) is of class 1.
func (m *Model) Predict(x, y float64) float64 {
	in := [2]float64{(x - m.Mean[0]) / m.Std[0], (y - m.Mean[1]) / m.Std[1]}
	return sigmoid(m.logit(in))
}

func (m *Model) logit(in [2]float64) float64 {
	z := m.B2
	if m.Hidden == 0 {
		return z + m.W2[0]*in[0] + m.W2[1]*in[1]
	}
	for j := range m.Hidden {
		z += m.W2[j] * math.Tanh(m.W1[j][0]*in[0]+m.W1[j][1]*in[1]+m.B1[j])
	}
	return z
}

// TrainOptions are what Train needs besides the parameters. Every field may
// be left zero.
type TrainOptions struct {
	// Seed seeds the dataset and the initial weights: one seed, one model.
	Seed string
	// Pace is a pause after each epoch, so that a demonstration can be
	// watched; 0 runs at full speed.
	Pace time.Duration
	// OnEpoch, when not nil, is called after each epoch; its error stops the
	// training and is returned as is.
	OnEpoch func(ctx context.Context, e Epoch) error
}

// Train generates the dataset of p and o.Seed and trains the model p
// describes on it. It returns ErrInvalidParams for parameters out of bounds,
// ErrDiverged when the numbers stop being finite, ctx's cause when ctx ends
// first (it looks between mini-batches, and always between epochs).
func Train(ctx context.Context, p Params, o TrainOptions) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	r := rng(o.Seed)
	data := TwoMoons(r, p.Samples, Noise)
	nTest := p.Samples / 5
	return fit(ctx, data[nTest:], data[:nTest], p, o, r)
}

// Sample is one point of a dataset and its class.
type Sample struct {
	X [2]float64
	// Y is the class, 0 or 1.
	Y float64
}

// TwoMoons draws n points of two interleaved half circles, half of each class,
// with Gaussian noise of standard deviation noise, in random order.
func TwoMoons(r *rand.Rand, n int, noise float64) []Sample {
	out := make([]Sample, n)
	for i := range out {
		t := math.Pi * r.Float64()
		s := &out[i]
		if i%2 == 0 {
			s.X = [2]float64{math.Cos(t), math.Sin(t)}
		} else {
			s.X = [2]float64{1 - math.Cos(t), 0.5 - math.Sin(t)}
			s.Y = 1
		}
		s.X[0] += noise * r.NormFloat64()
		s.X[1] += noise * r.NormFloat64()
	}
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// rng returns the random generator of seed.
func rng(seed string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	s := h.Sum64()
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

// net is the model being trained, its weights in flat slices.
type net struct {
	hidden int
	w1, b1 []float64 // hidden x 2, hidden
	w2     []float64 // hidden (or 2 without a hidden layer)
	b2     float64
	h      []float64 // activations of the current sample
}

func newNet(hidden int, r *rand.Rand) *net {
	n := &net{hidden: hidden, b1: make([]float64, hidden), h: make([]float64, hidden)}
	if hidden == 0 {
		n.w2 = make([]float64, 2)
		return n
	}
	// Xavier initialisation, for tanh units.
	n.w1 = make([]float64, 2*hidden)
	for i := range n.w1 {
		n.w1[i] = r.NormFloat64() / math.Sqrt2
	}
	n.w2 = make([]float64, hidden)
	for i := range n.w2 {
		n.w2[i] = r.NormFloat64() / math.Sqrt(float64(hidden))
	}
	return n
}

// logit computes the output before the sigmoid, keeping the hidden
// activations in n.h.
func (n *net) logit(x [2]float64) float64 {
	if n.hidden == 0 {
		return n.w2[0]*x[0] + n.w2[1]*x[1] + n.b2
	}
	z := n.b2
	for j := range n.hidden {
		a := math.Tanh(n.w1[2*j]*x[0] + n.w1[2*j+1]*x[1] + n.b1[j])
		n.h[j] = a
		z += n.w2[j] * a
	}
	return z
}

// finite says whether every weight is a finite number.
func (n *net) finite() bool {
	for _, s := range [][]float64{n.w1, n.b1, n.w2, {n.b2}} {
		for _, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// sigmoid is the logistic function, stable for large |z|.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// crossEntropy is the loss of logit z for class y, computed from the logit so
// that it stays finite however sure and wrong the model is.
func crossEntropy(z, y float64) float64 {
	return math.Max(z, 0) - z*y + math.Log1p(math.Exp(-math.Abs(z)))
}

// batchesPerLook is how many mini-batches run between two looks at ctx.
const batchesPerLook = 64

// fit trains the model of p on train and evaluates it on test. It does not
// check p's bounds, so that tests can drive it past them.
func fit(ctx context.Context, train, test []Sample, p Params, o TrainOptions, r *rand.Rand) (*Model, error) {
	start := time.Now()
	if len(train) == 0 {
		return nil, fmt.Errorf("%w: no training samples", ErrInvalidParams)
	}
	// Standardise with the training set's statistics.
	var mean, std [2]float64
	for _, s := range train {
		mean[0] += s.X[0]
		mean[1] += s.X[1]
	}
	mean[0] /= float64(len(train))
	mean[1] /= float64(len(train))
	for _, s := range train {
		std[0] += (s.X[0] - mean[0]) * (s.X[0] - mean[0])
		std[1] += (s.X[1] - mean[1]) * (s.X[1] - mean[1])
	}
	for i := range std {
		std[i] = math.Sqrt(std[i] / float64(len(train)))
		if std[i] < 1e-12 {
			std[i] = 1
		}
	}
	norm := func(in []Sample) []Sample {
		out := make([]Sample, len(in))
		for i, s := range in {
			out[i] = Sample{X: [2]float64{(s.X[0] - mean[0]) / std[0], (s.X[1] - mean[1]) / std[1]}, Y: s.Y}
		}
		return out
	}
	trainN, testN := norm(train), norm(test)

	n := newNet(p.Hidden, r)
	gw1, gb1, gw2 := make([]float64, len(n.w1)), make([]float64, len(n.b1)), make([]float64, len(n.w2))
	order := make([]int, len(trainN))
	for i := range order {
		order[i] = i
	}
	epochs := 0
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var loss float64
		correct := 0
		for b, from := 0, 0; from < len(order); b, from = b+1, from+BatchSize {
			if b%batchesPerLook == batchesPerLook-1 && ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			batch := order[from:min(from+BatchSize, len(order))]
			clear(gw1)
			clear(gb1)
			clear(gw2)
			gb2 := 0.0
			for _, i := range batch {
				s := &trainN[i]
				z := n.logit(s.X)
				loss += crossEntropy(z, s.Y)
				if (z >= 0) == (s.Y == 1) {
					correct++
				}
				d := sigmoid(z) - s.Y
				gb2 += d
				if n.hidden == 0 {
					gw2[0] += d * s.X[0]
					gw2[1] += d * s.X[1]
					continue
				}
				for j := range n.hidden {
					a := n.h[j]
					gw2[j] += d * a
					dh := d * n.w2[j] * (1 - a*a)
					gw1[2*j] += dh * s.X[0]
					gw1[2*j+1] += dh * s.X[1]
					gb1[j] += dh
				}
			}
			// The mean gradient of the batch, its norm clipped.
			scale := 1 / float64(len(batch))
			sq := gb2 * gb2
			for _, g := range [][]float64{gw1, gb1, gw2} {
				for _, v := range g {
					sq += v * v
				}
			}
			if gn := math.Sqrt(sq) * scale; gn > ClipNorm {
				scale *= ClipNorm / gn
			}
			step := p.LearningRate * scale
			for i, g := range gw1 {
				n.w1[i] -= step * g
			}
			for i, g := range gb1 {
				n.b1[i] -= step * g
			}
			for i, g := range gw2 {
				n.w2[i] -= step * g
			}
			n.b2 -= step * gb2
		}
		loss /= float64(len(order))
		if math.IsNaN(loss) || math.IsInf(loss, 0) || !n.finite() {
			return nil, fmt.Errorf("%w at epoch %d with a learning rate of %v: lower it", ErrDiverged, epoch, p.LearningRate)
		}
		epochs = epoch
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if o.OnEpoch != nil {
			e := Epoch{Epoch: epoch, Loss: round(loss, 6), Accuracy: round(float64(correct)/float64(len(order)), 6)}
			if err := o.OnEpoch(ctx, e); err != nil {
				return nil, err
			}
		}
		if err := pause(ctx, o.Pace); err != nil {
			return nil, err
		}
	}

	m := &Model{
		Type: "logistic-regression", Inputs: 2, Hidden: p.Hidden, Output: "sigmoid",
		Mean: mean[:], Std: std[:], W2: n.w2, B2: n.b2, Params: p, Epochs: epochs,
		Dataset: DatasetInfo{Name: DatasetName, Seed: o.Seed, Noise: Noise, Train: len(train), Test: len(test)},
	}
	if p.Hidden > 0 {
		m.Type, m.Activation, m.B1 = "mlp", "tanh", n.b1
		m.W1 = make([][]float64, p.Hidden)
		for j := range m.W1 {
			m.W1[j] = n.w1[2*j : 2*j+2 : 2*j+2]
		}
	}
	m.Loss, m.Accuracy = evaluate(m, trainN)
	m.TestLoss, m.TestAccuracy = evaluate(m, testN)
	m.Seconds = round(time.Since(start).Seconds(), 3)
	return m, nil
}

// evaluate returns the mean loss and the accuracy of m on standardised
// samples (0, 0 without samples).
func evaluate(m *Model, samples []Sample) (loss, accuracy float64) {
	if len(samples) == 0 {
		return 0, 0
	}
	correct := 0
	for _, s := range samples {
		z := m.logit(s.X)
		loss += crossEntropy(z, s.Y)
		if (z >= 0) == (s.Y == 1) {
			correct++
		}
	}
	return round(loss/float64(len(samples)), 6), round(float64(correct)/float64(len(samples)), 6)
}

// round rounds v to digits decimals, keeping the JSON short.
func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// pause waits d, or until ctx ends (then it returns ctx's cause).
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
