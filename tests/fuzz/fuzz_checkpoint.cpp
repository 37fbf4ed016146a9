// SPDX-License-Identifier: MIT
// libFuzzer: checkpoint reading and restore(). The input is a checkpoint's payload; the harness
// puts a valid header and checksum before it, so the fuzzer explores every field's checks rather
// than the checksum (a crafted file can always carry a right checksum).
#include "common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string payload(reinterpret_cast<const char*>(data), size);
  purevlm::detail::byte_writer h;
  h.pod(purevlm::detail::checkpoint_version);
  h.pod(std::uint64_t(payload.size()));
  h.pod(purevlm::detail::fnv1a(payload));
  std::istringstream in(std::string(purevlm::detail::checkpoint_magic, 8) + h.out + payload);
  try {
    const purevlm::checkpoint c = purevlm::read_checkpoint(in, "fuzz.ckpt");
    purevlm::vlm model(c.config, purevlm::vocabulary(c.class_names));  // as load_model() does
    purevlm::basic_adam<float> adam(model.parameter_count());
    purevlm::run_state run;
    purevlm::rng init;
    restore(c, model, &adam, &run, &init);
    for (float v : model.parameters().values()) fuzz::require(std::isfinite(v));
    fuzz::require(adam.steps() >= 0 && run.batch > 0);
  } catch (const purevlm::error&) {
  }
  return 0;
}
