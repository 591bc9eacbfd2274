#!/bin/sh
# Starts a streamed answer (no Content-Length), then fails.
printf 'Content-Type: text/plain\n\nthe beginning'
exit 1
