#!/bin/sh
# A shell script: no Content-Length, a body in three pieces with pauses, a Status line.
printf 'Status: 201 Created\r\nContent-Type: text/plain\r\nX-Script: stream\r\n\r\n'
printf 'one\n'
sleep 0.05
printf 'two\n'
sleep 0.05
printf 'three\n'
