package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/taskwire/taskwire/server/internal/paramschema"
	"github.com/taskwire/taskwire/server/internal/taskservice"
	"github.com/taskwire/taskwire/shared/tasks"
)

// listKinds answers GET /api/v1/kinds: every kind the workers registered, read
// from Redis for this request. It needs no session: kinds are the same for
// everybody.
func (h *handlers) listKinds(c *gin.Context) {
	kinds, err := h.Tasks.Kinds(c)
	if err != nil {
		h.taskError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"kinds": kinds})
}

// writeDetailedError writes an error body with extra members in the error
// object (details, known) and aborts the chain.
func writeDetailedError(c *gin.Context, status int, code, message string, extra gin.H) {
	e := gin.H{"code": code, "message": message}
	for k, v := range extra {
		e[k] = v
	}
	c.AbortWithStatusJSON(status, gin.H{"error": e})
}

// creationError answers the errors of a task creation that say what is wrong
// with the request, field by field. It reports whether err was one of them.
func creationError(c *gin.Context, err error) bool {
	var (
		ve *tasks.ValidationError
		uk *taskservice.UnknownKindError
		pe *taskservice.ParamsError
		ku *taskservice.KindUnavailableError
	)
	switch {
	case errors.As(err, &uk):
		known := uk.Known
		if known == nil {
			known = []string{}
		}
		writeDetailedError(c, http.StatusBadRequest, "unknown_kind", uk.Error(), gin.H{
			"details": []paramschema.FieldError{{Field: "kind", Message: uk.Reason()}},
			"known":   known,
		})
	case errors.As(err, &pe):
		writeDetailedError(c, http.StatusBadRequest, "invalid_params", pe.Error(), gin.H{"details": pe.Details})
	case errors.As(err, &ve):
		field := ve.Field
		if field == "" {
			field = "body"
		}
		writeDetailedError(c, http.StatusBadRequest, ve.ErrorCode(), ve.Error(), gin.H{
			"details": []paramschema.FieldError{{Field: field, Message: ve.Message}},
		})
	case errors.As(err, &ku):
		writeError(c, http.StatusServiceUnavailable, "kind_unavailable", ku.Error())
	default:
		return false
	}
	return true
}
