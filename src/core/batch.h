// Dynamic batching's data side: which requests can share one execution, stacking their inputs along the
// first (batch) dimension, and slicing each request's rows back out of the outputs. The scheduler decides
// when; this file decides how. Requests reach it validated (core/validate.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/infer_request.h"

namespace serving {

// The rows of a validated request: its inputs' shared first dimension (1 when they have no dimension).
int64_t RequestRows(const InferRequest& request);

// Whether `b` may run in one execution with `a`: the same inputs, each with the same dimensions after the
// first. Inputs without dimensions never stack.
bool Stackable(const InferRequest& a, const InferRequest& b);

// The inputs of `requests` (pairwise Stackable) stacked along the first dimension, in the first request's
// input order: one owning tensor per input. Copies the bytes; a single request needs no stacking.
std::vector<Tensor> StackInputs(std::span<const InferRequest* const> requests);

// Rows [first, first + rows) of `t` along its first dimension, viewing t's memory and sharing its owner
// (copied when t owns nothing). INTERNAL when `t` does not have first + rows rows: a model whose output does
// not keep the batch dimension cannot be batched.
StatusOr<Tensor> SliceRows(const Tensor& t, int64_t first, int64_t rows);

}  // namespace serving
