package agent

import (
	"log"
	"log/slog"
)

func slogErrorLog(l *slog.Logger) *log.Logger {
	if l == nil {
		return nil
	}
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}
