// SPDX-License-Identifier: MIT
// purevlm: a vision-language model made of polynomial kernels, small enough to read in one
// sitting. An MNIST digit becomes tokens through bilinear autoencoders (degree 2) and their
// tensor product (degree 4), applied to the whole image (the seed) or with shared weights to its
// patches, one token per region (the default); a GPT whose attention score (q1·k1)(q2·k2)/D is
// itself a degree-4 kernel reads them and writes the digit's name: [7] → "seven".
// What it is: header-only C++20, no dependencies, CPU, every gradient an explicit kernel.
// What it is not: a framework. No devices, no plugin registries, no layer class hierarchies,
// no expression templates. Reading order: tensor, ops, tape, optim, bae, patch, attention, gpt,
// model, data/, train, checkpoint.
#pragma once

#include "tensor.hpp"
#include "ops.hpp"
#include "tape.hpp"
#include "optim.hpp"
#include "bae.hpp"
#include "patch.hpp"
#include "attention.hpp"
#include "gpt.hpp"
#include "model.hpp"
#include "data/words.hpp"
#include "data/idx.hpp"
#include "data/image.hpp"
#include "data/numbers.hpp"
#include "train.hpp"
#include "checkpoint.hpp"
