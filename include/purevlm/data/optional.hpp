// SPDX-License-Identifier: MIT
// data/optional.hpp: the optional decoders a program may link — zlib (gzip IDX files, when it
// defines PUREVLM_HAS_ZLIB) and libpng (PNG pictures, PUREVLM_HAS_PNG). The readers that use them
// live in an inline namespace named after the choice, so two translation units that choose
// differently get two differently named functions, never two definitions of one (no ODR trap);
// callers write purevlm::read_idx_images as always. The library itself depends on nothing.
#pragma once

#if defined(PUREVLM_HAS_ZLIB) && defined(PUREVLM_HAS_PNG)
#define PUREVLM_IO_NAMESPACE io_zlib_png
#elif defined(PUREVLM_HAS_ZLIB)
#define PUREVLM_IO_NAMESPACE io_zlib
#elif defined(PUREVLM_HAS_PNG)
#define PUREVLM_IO_NAMESPACE io_png
#else
#define PUREVLM_IO_NAMESPACE io_plain
#endif
