package train

import (
	"errors"
	"fmt"
	"math"
)

// Bounds and defaults of the parameters, as in the schema of Params.
const (
	MinEpochs           = 1
	MaxEpochs           = 500
	DefaultEpochs       = 60
	MinLearningRate     = 0.0001
	MaxLearningRate     = 1
	DefaultLearningRate = 0.1
	MinSamples          = 100
	MaxSamples          = 100_000
	DefaultSamples      = 2000
	MinHidden           = 0
	MaxHidden           = 64
	DefaultHidden       = 8
)

// Params are the parameters of a training run. The tags are the kind's
// parameters schema (github.com/invopop/jsonschema syntax); the servers
// validate every new task against it and fill in the defaults.
type Params struct {
	// Epochs is the number of passes over the training set.
	Epochs int `json:"epochs" jsonschema:"minimum=1,maximum=500,default=60,title=Epochs,description=Number of passes over the training set"`
	// LearningRate is the step size of gradient descent.
	LearningRate float64 `json:"learningRate" jsonschema:"minimum=0.0001,maximum=1,default=0.1,title=Learning rate,description=Step size of the gradient descent"`
	// Samples is the size of the generated dataset, training and test sets
	// together.
	Samples int `json:"samples" jsonschema:"minimum=100,maximum=100000,default=2000,title=Samples,description=Size of the generated dataset (four fifths train the model and one fifth tests it)"`
	// Hidden is the number of units of the hidden layer; 0 trains a logistic
	// regression.
	Hidden int `json:"hidden" jsonschema:"minimum=0,maximum=64,default=8,title=Hidden units,description=Units of the hidden layer (0 trains a logistic regression)"`
}

// ErrInvalidParams is the error of parameters out of their bounds (the
// servers refuse them before they reach a worker; direct callers get this).
var ErrInvalidParams = errors.New("train: invalid parameters")

// Validate checks p against the bounds of the schema.
func (p Params) Validate() error {
	switch {
	case p.Epochs < MinEpochs || p.Epochs > MaxEpochs:
		return fmt.Errorf("%w: epochs is %d, want %d to %d", ErrInvalidParams, p.Epochs, MinEpochs, MaxEpochs)
	case math.IsNaN(p.LearningRate) || p.LearningRate < MinLearningRate || p.LearningRate > MaxLearningRate:
		return fmt.Errorf("%w: learningRate is %v, want %v to %v", ErrInvalidParams, p.LearningRate, MinLearningRate, MaxLearningRate)
	case p.Samples < MinSamples || p.Samples > MaxSamples:
		return fmt.Errorf("%w: samples is %d, want %d to %d", ErrInvalidParams, p.Samples, MinSamples, MaxSamples)
	case p.Hidden < MinHidden || p.Hidden > MaxHidden:
		return fmt.Errorf("%w: hidden is %d, want %d to %d", ErrInvalidParams, p.Hidden, MinHidden, MaxHidden)
	}
	return nil
}
