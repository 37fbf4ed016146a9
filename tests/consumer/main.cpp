// Builds the seed model from the installed headers, runs one training step, says a word, and
// saves the model (argv[1]) for read_digit to load.
#include <purevlm/vlm.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  purevlm::vlm model(purevlm::vlm_config::seed(), purevlm::vocabulary(purevlm::mnist_class_names()));
  std::vector<float> image(196, 1.0f / 14.0f);
  purevlm::tape t;
  auto r = model.forward(t, image, model.vocab().encode("seven"));
  t.backward(r.loss);
  const std::string word = model.generate(image);
  std::printf("consumer: %zu parameters, loss %.4f, untrained model says \"%s\"\n", model.parameter_count(),
              double(t.value(r.loss)[0]), word.c_str());
  if (argc > 1) purevlm::save_model(argv[1], model);
  return model.parameter_count() == 32240 ? 0 : 1;
}
