// Your own orchestrator: model selection, then a proxy-task search on its reference models,
// driven from C++ with the public headers only.   Usage: proxytask-orchestrator-example RUN_DIR
#include <proxytask/exec/local_process.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/progress.hpp>
#include <proxytask/workflow/proxy_configs.hpp>
#include <proxytask/workflow/proxy_search.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>

namespace pt = proxytask;
namespace wf = proxytask::workflow;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: proxytask-orchestrator-example RUN_DIR\n";
    return 2;
  }
  std::filesystem::path const run_dir = argv[1];

  // Runs a tool to its end in its own directory (state files, trials, results), with progress
  // lines on stderr. Run the program again after a kill or Ctrl-C and it resumes.
  auto run = [](auto const& tool, std::filesystem::path const& dir) {
    // Synthetic learning curves under a virtual clock, so that this runs in seconds. With your
    // trainer (a program that speaks the trial file protocol), this line becomes:
    //   pt::exec::local_process_executor exec(dir, {.trainer_command = {"python3", "train.py"}});
    pt::exec::simulated_executor exec(dir);
    auto const printer = wf::progress_printer::for_stderr(std::cerr, /*quiet=*/false);
    return wf::run(tool, exec, {.run_dir = dir, .progress = printer});
  };

  // The search space: a model spec for a seed (MODEL_SPEC.json of the trial). Your trainer reads
  // the parameters; the simulated one trains a model to its "final_accuracy".
  wf::model_sampler const sampler = [](std::uint64_t seed) {
    return pt::protocol::model_spec{
        "mlp-" + std::to_string(seed),
        {{"width", 64 << (seed % 3)},
         {"final_accuracy", 0.6 + 0.3 * static_cast<double>(seed % 101) / 100}}};
  };
  wf::model_selection_tool_options selection;
  selection.schedule = {
      .start_num_models = 12, .final_num_models = 6, .num_models_to_remove_per_iter = 3};
  auto const selected = run(wf::model_selection_tool(sampler, selection), run_dir / "selection");
  if (!selected) {
    std::cerr << selected.error().message() << '\n';
    return 1;
  }

  // The proxy-task search on the reference models (also in MODEL_SELECTION_RESULT.json). Every
  // proxy has the same fidelity in this simulation, so the first one is as good as any.
  wf::proxy_search_options search;
  auto const reference = wf::reference_models_from_json(*selected, "model selection");
  auto const proxies = wf::proxy_grid({{"data_pct", {"25", "50"}}}).configs();
  if (!reference || !proxies) return 1;
  search.reference_models = *reference;
  search.proxies = *proxies;
  auto const found = run(wf::proxy_search_tool(search), run_dir / "search");
  if (!found) {
    std::cerr << found.error().message() << '\n';
    return 1;
  }
  // The result (also PROXY_SEARCH_RESULT.json): the best proxy and what to set for the NAS.
  std::cout << "status: " << found->at("status")
            << ", best proxy: " << found->at("best_proxy_task_name")
            << ", training steps: " << found->at("final_training_steps") << '\n';
  return 0;
}
