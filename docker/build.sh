#!/usr/bin/env bash
# Build the Spark image with one variant's environment as a layer.
#
#   docker/build.sh VARIANT [BASE_IMAGE] [TAG]
#
# BASE_IMAGE defaults to $BASE_IMAGE, else to apache/spark:<the locked pyspark version>,
# and must be in the builder's local store; TAG defaults to spark-k8s-python-deps:VARIANT.
# BUILDER=docker|podman|buildah picks the builder (default: the first that works).
# Packing, slimming and the build arguments are `bundler image`'s; see docker/Dockerfile.
set -euo pipefail

usage="usage: docker/build.sh VARIANT [BASE_IMAGE] [TAG]"
variant="${1:?$usage}"
base="${2:-${BASE_IMAGE:-}}"
tag="${3:-spark-k8s-python-deps:$variant}"

cd "$(dirname "$0")/.."
exec bundler image "$variant" ${base:+--base "$base"} --tag "$tag" ${BUILDER:+--builder "$BUILDER"}
