// proxytask-reference-trainer: the reference trainer (DESIGN.md "Reference trainer"). It trains
// one multilayer perceptron of the search space (trainer/search_space.hpp) on Fashion-MNIST with
// the CPU back-end (OpenBLAS) and speaks the trial file protocol, so every proxytask tool can
// drive it as a child process. Where nvcc is found, a second program,
// proxytask-reference-trainer-cuda (reference_trainer/reference_trainer_cuda.cu), is the same
// trainer with the GPU back-end too (cuBLAS + fused kernels: cuda/proxytask/trainer/mlp.cuh),
// chosen by --device. Two programs rather than one built by nvcc: this one stays a plain g++
// program with no CUDA runtime dependency (it runs, and its tests pass, on machines without the
// CUDA libraries), while the CUDA one needs them. Both run the same code
// (include/proxytask/trainer/reference_program.hpp, a template over the back-end, which the
// in-process executor also runs as a C++ callable trainer); this file is the CPU build's main.
//
//   proxytask-reference-trainer --model_dir=D [--model_spec=F] [--seed=N] [--resume_from=P]
//       [--<knob>=<value> ...]        (or the PROXYTASK_* variables: protocol/launch.hpp)
//   proxytask-reference-trainer --help
//   proxytask-reference-trainer-cuda --device=cuda --model_dir=D ...     (the CUDA build)
//
// Proxy knobs and training arguments (all optional; every one is a --name=value proxy argument):
//   --data_pct=P         % of the training split used, class-balanced, seeded (100)
//   --model_scale=S      every hidden width times S, rounded, at least 8 (1.0)
//   --downsample=0|1     28x28 -> 14x14 images by 2x2 means (0)
//   --epochs=E           passes over the training subset (after data_pct), a real number > 0
//                        such as 2.5; the run trains max(1, round(E x steps per epoch)) steps,
//                        an epoch being ceil(training images / batch size) steps, so a proxy
//                        with less data trains the same epochs in fewer steps (10)
//   --total_steps=N      optimizer steps of the whole run instead of --epochs (giving both is
//                        a usage error); the cosine schedule spans the run's steps (from --epochs)
//   --batch_size=B       (256)
//   --optimizer=adam|sgd adam, or SGD with momentum (adam)
//   --learning_rate=R    the peak learning rate (1e-3)
//   --momentum=M         SGD's momentum (0.9)
//   --weight_decay=W     decoupled for Adam, L2 for SGD; weights only (0)
//   --clip_norm=C        global gradient-norm clipping, 0 = off (0)
//   --ema_decay=E        EMA of the weights, used for validation and inference, 0 = off (0)
//   --warmup_fraction=F  linear warmup over this fraction of total_steps (0)
//   --eval_every=K       steps per training cycle: each cycle ends with a validation
//                        accuracy, a metrics point and a checkpoint (half an epoch, rounded up)
//   --max_loss=L         a batch loss above L counts as divergence, 0 = only NaN/inf (1e4)
//   --blas_threads=T     OpenBLAS threads (CPU back-end); 1 is bitwise reproducible (1)
//   --device=D           cpu, cuda or auto: the back-end that trains and times the model (auto).
//                        auto is cuda in the CUDA build when a CUDA device is present, else cpu;
//                        this build has only cpu (--device=cuda here is a usage error)
//   --final_test=0|1     at the end, also evaluate the 10,000 test images and print it (0)
//   --data_dir=DIR       the Fashion-MNIST IDX files ($PROXYTASK_FASHION_MNIST_DIR, else
//                        /usr/share/datasets/fashion-mnist)
// An unknown argument is a usage error: a misspelt knob must not silently train another proxy.
//
// The model: MODEL_SPEC.json's "parameters" ({"hidden": [...], "activation": ..., "dropout": ...});
// when the file does not exist, the model the seed names (sample_mlp(seed)) is written there, so
// the trial directory documents what was trained. The data: the 60,000 training images minus a
// fixed, seed-independent 10,000-image validation split; the proxy's accuracy is measured on that
// split, never on the test set; data_pct then subsamples the rest with the seed.
//
// Training runs in cycles of eval_every steps. Each cycle is timed (training only), then the
// validation accuracy is recorded in TRIAL_TRAINING_METRICS.json, the whole training state is
// saved atomically to CHECKPOINT.bin in the trial directory, and the controller's signals are
// read (DESIRED_TRAINING_PCT.json, MAX_TRAINING_TIME.json, the heartbeat), also once before the
// first cycle (a posted 0 stops it before any training). Resuming: a trial directory holding a
// CHECKPOINT.bin continues from it; otherwise --resume_from=P with a P/CHECKPOINT.bin starts from
// that one, after copying P's TRIAL_TRAINING_METRICS.json, so the curve continues (model
// selection continuing a model's training). With --blas_threads=1 a resumed run gives the same
// bits as an uninterrupted one (on a GPU, the same bits as the uninterrupted GPU run; CPU and GPU
// checkpoints have one format, so either resumes the other's within float rounding). After
// training stops, batch-1 inference is timed (the median of 200 runs, in milliseconds) on the
// device that trained, and recorded as the trial's latency; batch-1 and batch-256 latencies are
// printed. The CPU times the call (steady_clock); the GPU times the forward pass's kernels with
// CUDA events, input already on the device.
//
// On the GPU the training set, the validation and test images stay on the device; each step
// gathers its batch there, and the host reads the losses back once per cycle rather than once
// per step (a sync per step would idle the GPU): a diverged step halts the trainer where it is,
// so the failure names the same step as on the CPU, found at the cycle's end. The LAST line on
// stdout is exactly "stopped: <reason>": a protocol stop_reason, or "completed" once every step is
// trained. A NaN or infinite loss, or one above max_loss, records TRIAL_FAILURE.json {"kind":
// "diverged"}; running out of memory (host or device) records {"kind": "oom"}; both exit 3.
// (max_loss: a run whose weights blew up often keeps a finite loss, its ReLUs dead and its logits
// huge: a learning rate of 1e6 gives losses of 1e13 to 1e31 and chance accuracy, never a NaN. A
// healthy run's mean cross-entropy stays near log(10) = 2.3; the initial loss of any model is below
// 100.) Exit status: 0 stopped or completed, 1 an I/O, file or data error (missing Fashion-MNIST, a
// malformed MODEL_SPEC.json, a checkpoint of another model or config, --device=cuda without a
// CUDA device), 2 a usage error, 3 a failure recorded in TRIAL_FAILURE.json.
//
// The documented full run: 784-256-10 ReLU, 15 epochs (2940 steps = 15 x 196) of Adam at a peak
// learning rate of 2e-3 with an EMA of 0.999, batch 256, on the 50,000 training images:
//   mkdir -p /tmp/rt1 && echo '{"model_id": "mlp-256-relu-d0", "parameters": {"hidden": [256],
//     "activation": "relu", "dropout": 0}}' > /tmp/rt1/MODEL_SPEC.json
//   proxytask-reference-trainer --model_dir=/tmp/rt1 --seed=1 --final_test=1 --blas_threads=2
//       --total_steps=2940 --learning_rate=2e-3 --ema_decay=0.999
// gave a validation accuracy of 0.8422 after the first half epoch, 0.8921 at 50%, 0.8975 at the
// end, and a test accuracy of 0.8883, in 14.7 s wall (12.4 s of training, 0.83 s per epoch; a
// shared 2-core AMD EPYC machine, OpenBLAS pthread, RelWithDebInfo). Batch-1 latency 0.011 ms,
// batch 256 0.81 ms. (10 epochs, the default, reach 0.8824.)

#include <proxytask/trainer/reference_program.hpp>

#include <exception>
#include <iostream>

namespace rt = proxytask::trainer::reference;

int main(int argc, char** argv) {
  rt::program_io io{std::cout, std::cerr};
  try {
    return rt::run(argc, argv, "proxytask-reference-trainer", io,
                   [](rt::protocol::launch_arguments const& args, rt::trainer_options const& o,
                      rt::program_io& out) {
                     if (o.device == rt::device_choice::cuda) {
                       out.err << "reference-trainer: --device=cuda: this build has no CUDA "
                                  "back-end (use proxytask-reference-trainer-cuda, built where "
                                  "nvcc is found)\n";
                       return rt::exit_usage;
                     }
                     return rt::train_on_cpu(args, o, out);
                   });
  } catch (std::exception const& e) {
    std::cerr << "reference-trainer: " << e.what() << '\n';
    return rt::exit_error;
  }
}
