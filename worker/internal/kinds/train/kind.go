package train

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire/worker"
)

// Kind is the kind's name.
const Kind = "train"

// StageTrain is the stage of a training run.
const StageTrain = "train"

// Streams of a training run.
const (
	// StreamMetrics gets one Epoch per epoch: {"epoch","loss","accuracy"}.
	StreamMetrics = "metrics"
	// StreamLog gets a line of text every few epochs.
	StreamLog = "log"
)

// logLines is about how many lines of progress the log stream gets.
const logLines = 12

// Options tune the kind.
type Options struct {
	// Pace pauses after each epoch, so that a demonstration shows the loss
	// curve being drawn (and lets a person cancel); 0, the default, runs at
	// full speed.
	Pace time.Duration
}

// Register registers the kind with w.
func Register(w *worker.Worker, opts Options) {
	worker.Handle(w, Kind, func(ctx context.Context, t *worker.Task, p Params) (*worker.Result, error) {
		return run(ctx, t, p, opts)
	},
		worker.Title("Model training"),
		worker.Description("Trains a small neural network (or a logistic regression) in pure Go on a generated two-moons dataset, streaming the loss and accuracy of every epoch; the result is the model as JSON."),
		worker.TotalParam("epochs"),
	)
}

func modelName(p Params) string {
	if p.Hidden == 0 {
		return "a logistic regression"
	}
	return fmt.Sprintf("a network of %d hidden units", p.Hidden)
}

func run(ctx context.Context, t *worker.Task, p Params, opts Options) (*worker.Result, error) {
	if err := p.Validate(); err != nil {
		return nil, worker.Permanent("invalid_params", err)
	}
	if err := t.SetMetadata(ctx, map[string]any{"samples": p.Samples, "hidden": p.Hidden, "epochs": p.Epochs}); err != nil {
		return nil, err
	}
	if err := t.Stage(ctx, StageTrain, fmt.Sprintf("Training %s for %d epochs", modelName(p), p.Epochs)); err != nil {
		return nil, err
	}
	nTest := p.Samples / 5
	if err := t.Append(ctx, StreamLog, fmt.Sprintf("%s: %d training and %d test points; %s, learning rate %v, batches of %d",
		DatasetName, p.Samples-nTest, nTest, modelName(p), p.LearningRate, BatchSize)); err != nil {
		return nil, err
	}
	every := max(1, p.Epochs/logLines)
	total := int64(p.Epochs)
	m, err := Train(ctx, p, TrainOptions{
		Seed: t.ID,
		Pace: opts.Pace,
		OnEpoch: func(ctx context.Context, e Epoch) error {
			if err := t.Append(ctx, StreamMetrics, e); err != nil {
				return err
			}
			if e.Epoch == 1 || e.Epoch%every == 0 || e.Epoch == p.Epochs {
				line := fmt.Sprintf("epoch %d/%d: loss %.4f, accuracy %.1f%%", e.Epoch, p.Epochs, e.Loss, 100*e.Accuracy)
				if err := t.Append(ctx, StreamLog, line); err != nil {
					return err
				}
			}
			return t.Progress(ctx, int64(e.Epoch), total)
		},
	})
	if err != nil {
		if errors.Is(err, ErrDiverged) {
			return nil, worker.Permanent("diverged", err)
		}
		return nil, err
	}
	if err := t.Append(ctx, StreamLog, fmt.Sprintf("done in %.2f s: test accuracy %.1f%% (loss %.4f) on %d points it never saw",
		m.Seconds, 100*m.TestAccuracy, m.TestLoss, m.Dataset.Test)); err != nil {
		return nil, err
	}
	return worker.JSONResult(m), nil
}
