#!/usr/bin/env bash
# Installs stripe-mock (Stripe's own mock server, a Go module) at the pinned version into
# .tools/bin (gitignored), where test/support/stripe-mock.ts starts it. Needs Go.
set -euo pipefail
cd "$(dirname "$0")/../.."
version="$(cat tools/stripe-mock/VERSION)"
GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod go install "github.com/stripe/stripe-mock@${version}"
echo "stripe-mock ${version} in .tools/bin"
