package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/taskwire/taskwire/worker"
)

// ThumbParams are the parameters of the "thumbnail" kind. Their JSON Schema is
// derived from the fields and tags; the servers validate every new task against
// it.
type ThumbParams struct {
	Upload string `json:"upload" jsonschema:"required,minLength=1,description=Id of the uploaded image"`
	Width  int    `json:"width" jsonschema:"minimum=16,maximum=4096,default=640"`
	Format string `json:"format" jsonschema:"enum=png,enum=jpeg,default=png"`
}

// A worker with a kind of its own: run it, and tasks started with
// POST /api/v1/tasks {"kind":"thumbnail","params":{"upload":"u-1"}} run here,
// with live progress in the browser.
func Example() {
	w, err := worker.New(worker.OptionsFromEnv())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	worker.Handle(w, "thumbnail", func(ctx context.Context, t *worker.Task, p ThumbParams) (*worker.Result, error) {
		if err := t.Stage(ctx, "decoding", "Reading "+p.Upload); err != nil {
			return nil, err
		}
		const frames = 40
		for i := int64(1); i <= frames; i++ {
			// ... resize one part of the image ...
			if err := t.Progress(ctx, i, frames); err != nil {
				return nil, err // cancelled by its owner, or taken over
			}
		}
		if err := t.SetMetadata(ctx, map[string]any{"width": p.Width}); err != nil {
			return nil, err
		}
		out, err := t.CreateResult(ctx, "thumb."+p.Format, "image/"+p.Format)
		if err != nil {
			return nil, err
		}
		// ... write the image to out ...
		if err := out.Close(); err != nil {
			return nil, err
		}
		return worker.FileResult(out), nil
	}, worker.Title("Thumbnail"))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Run(ctx); err != nil { // until SIGTERM, then it drains
		slog.Error("worker stopped", "err", err)
		os.Exit(1)
	}
}

// The schema the servers learn from a kind's parameters struct.
func ExampleHandle() {
	w, err := worker.New(worker.Options{})
	if err != nil {
		panic(err)
	}
	worker.Handle(w, "thumbnail", func(ctx context.Context, t *worker.Task, p ThumbParams) (*worker.Result, error) {
		return worker.JSONResult(map[string]any{"width": p.Width}), nil
	}, worker.Title("Thumbnail"), worker.MaxAttempts(5))

	k := w.Kinds()[0]
	var schema map[string]any
	_ = json.Unmarshal(k.ParamsSchema, &schema)
	pretty, _ := json.MarshalIndent(schema, "", "  ")
	fmt.Println(k.Name, k.Title, k.MaxAttempts)
	fmt.Println(string(pretty))
	// Output:
	// thumbnail Thumbnail 5
	// {
	//   "$schema": "https://json-schema.org/draft/2020-12/schema",
	//   "additionalProperties": false,
	//   "properties": {
	//     "format": {
	//       "default": "png",
	//       "enum": [
	//         "png",
	//         "jpeg"
	//       ],
	//       "type": "string"
	//     },
	//     "upload": {
	//       "description": "Id of the uploaded image",
	//       "minLength": 1,
	//       "type": "string"
	//     },
	//     "width": {
	//       "default": 640,
	//       "maximum": 4096,
	//       "minimum": 16,
	//       "type": "integer"
	//     }
	//   },
	//   "required": [
	//     "upload"
	//   ],
	//   "type": "object"
	// }
}

// A kind that reports, on its next run, whether the owner of an earlier task
// got its outcome and looked at it.
func ExampleWorker_TaskRecord() {
	w, err := worker.New(worker.OptionsFromEnv())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	type FollowUp struct {
		Task string `json:"task" jsonschema:"required"`
	}
	worker.Handle(w, "follow-up", func(ctx context.Context, t *worker.Task, p FollowUp) (*worker.Result, error) {
		rec, err := w.TaskRecord(ctx, p.Task)
		if errors.Is(err, worker.ErrNoTask) {
			return nil, worker.Permanent("no_task", err)
		}
		if err != nil {
			return nil, err
		}
		return worker.JSONResult(map[string]any{
			"delivered": rec.DeliveredAt != nil, // a page of the owner had the final event
			"seen":      rec.SeenAt != nil,      // the owner marked it seen
		}), nil
	})
	_ = w.Run(context.Background())
}
