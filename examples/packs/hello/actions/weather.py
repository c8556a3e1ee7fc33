"""Reads parameters and one secret from stdin (one JSON line), returns a JSON result."""
import hashlib
import json
import os
import sys

inputs = json.loads(sys.stdin.readline())
key = inputs["api_key"]
report = {
    "city": inputs["city"],
    "units": inputs["units"],
    "forecast": "sunny" if len(inputs["city"]) % 2 else "cloudy",
    # Proof that the secret arrived, without printing it.
    "api_key_sha256_prefix": hashlib.sha256(key.encode()).hexdigest()[:12],
    "api_key_in_environ": any(key in value for value in os.environ.values()),
    "interpreter": sys.executable,
}
print(json.dumps(report))
