// Builds the seed model from the installed headers, runs one training step and says a word.
#include <purevlm/vlm.hpp>

#include <cstdio>

int main() {
  purevlm::vlm model(purevlm::vlm_config::seed(), purevlm::vocabulary(purevlm::mnist_class_names()));
  std::vector<float> image(196, 1.0f / 14.0f);
  purevlm::tape t;
  auto r = model.forward(t, image, model.vocab().encode("seven"));
  t.backward(r.loss);
  const std::string word = model.generate(image);
  std::printf("consumer: %zu parameters, loss %.4f, untrained model says \"%s\"\n", model.parameter_count(),
              double(t.value(r.loss)[0]), word.c_str());
  return model.parameter_count() == 32240 ? 0 : 1;
}
