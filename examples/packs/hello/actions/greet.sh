#!/bin/bash
# Reads the parameters (one JSON line on stdin) without any JSON tool: python is not assumed.
read -r input
name=$(printf '%s' "$input" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
times=$(printf '%s' "$input" | sed -n 's/.*"times":\([0-9]*\).*/\1/p')
for _ in $(seq "${times:-1}"); do
  echo "Hello, ${name:-world}! (from $(hostname), uid $(id -u))"
done
