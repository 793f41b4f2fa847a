// vitdeploy_et_runner: times one ExecuTorch program's `forward` method with the runtime
// libraries of the executorch wheel (built by bench_runner/native_runner/build.py).
//
//   vitdeploy_et_runner --model PATH.pte --warmup W --iterations N
//                       [--threads T] [--cpu-list 0,1] [--input-seed S]
//
// Order of work: pin the CPUs, size the thread pool, load the program and the method
// (timed together), fill every input from the seed, time the first inference, run W
// untimed warm-up inferences, then N inferences each timed alone. Every line of stdout
// starts with "vitdeploy-runner " (bench_runner/native_runner/output.py reads them); errors
// go to stderr, with one exit status per kind of failure (see Exit).

#include <sched.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/core/error.h>
#include <executorch/runtime/core/exec_aten/util/scalar_type_util.h>

// The wheel ships libexecutorch_threadpool.so but not threadpool.h (which includes
// pthreadpool.h, not shipped either): the two members used here, declared as that
// header declares them.
namespace executorch::extension::threadpool {
class ThreadPool final {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

#ifndef VITDEPLOY_EXECUTORCH_VERSION
#error "build with -DVITDEPLOY_EXECUTORCH_VERSION=\"...\" (build.py does)"
#endif

namespace {

using executorch::aten::ScalarType;
using executorch::extension::Module;
using executorch::extension::TensorPtr;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::MethodMeta;
using executorch::runtime::Tag;
using Clock = std::chrono::steady_clock;

constexpr int kFormat = 1;
constexpr const char* kMethod = "forward";

// bench_runner/native_runner/output.py's EXIT_STATUSES says the same.
enum Exit : int {
  kUsage = 2,
  kModelMissing = 3,
  kProgramLoad = 4,
  kMethodLoad = 5,
  kUnsupportedIo = 6,
  kExecution = 7,
  kPlatform = 8,  // CPU affinity, the thread pool, /proc/self/status
};

struct Options {
  std::string model;
  long warmup = -1;
  long iterations = -1;
  long threads = 0;  // 0: leave the pool at its default size
  std::vector<int> cpus;
  uint64_t seed = 0;
};

[[noreturn]] void fail(int status, const std::string& message) {
  std::fprintf(stderr, "vitdeploy_et_runner: error: %s\n", message.c_str());
  std::exit(status);
}

std::string describe(Error error) {
  char code[16];
  std::snprintf(code, sizeof(code), "0x%x", static_cast<unsigned>(error));
  return std::string(executorch::runtime::to_string(error)) + " (error " + code + ")";
}

long parse_count(const char* flag, const char* text) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < 0) {
    fail(kUsage, std::string(flag) + " takes a non-negative integer, got '" + text + "'");
  }
  return value;
}

std::vector<int> parse_cpu_list(const char* text) {
  std::vector<int> cpus;
  std::string item;
  for (const char* c = text;; ++c) {
    if (*c == ',' || *c == '\0') {
      long cpu = parse_count("--cpu-list", item.c_str());
      if (cpu >= CPU_SETSIZE) {
        fail(kUsage, "--cpu-list names CPU " + item + ", beyond what this system can address");
      }
      cpus.push_back(static_cast<int>(cpu));
      item.clear();
      if (*c == '\0') {
        return cpus;
      }
    } else {
      item += *c;
    }
  }
}

Options parse_options(int argc, char** argv) {
  const char* usage =
      "usage: vitdeploy_et_runner --model PATH.pte --warmup W --iterations N "
      "[--threads T] [--cpu-list 0,1] [--input-seed S] | --version";
  Options options;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) {
      fail(kUsage, flag + " needs a value; " + usage);
    }
    const char* value = argv[i + 1];
    if (flag == "--model") {
      options.model = value;
    } else if (flag == "--warmup") {
      options.warmup = parse_count("--warmup", value);
    } else if (flag == "--iterations") {
      options.iterations = parse_count("--iterations", value);
    } else if (flag == "--threads") {
      options.threads = parse_count("--threads", value);
    } else if (flag == "--cpu-list") {
      options.cpus = parse_cpu_list(value);
    } else if (flag == "--input-seed") {
      options.seed = static_cast<uint64_t>(parse_count("--input-seed", value));
    } else {
      fail(kUsage, "unknown option " + flag + "; " + usage);
    }
  }
  if (options.model.empty() || options.warmup < 0 || options.iterations < 1) {
    fail(kUsage, std::string("--model, --warmup and --iterations (at least 1) are required; ") + usage);
  }
  return options;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Pins this thread before the pool exists, so that the pool's threads inherit the set.
// Returns the CPUs the process may run on.
std::vector<int> pin_cpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  if (!cpus.empty()) {
    CPU_ZERO(&set);
    for (int cpu : cpus) {
      CPU_SET(cpu, &set);
    }
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      fail(kPlatform, std::string("cannot pin to the CPUs of --cpu-list: ") + std::strerror(errno));
    }
  }
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    fail(kPlatform, std::string("cannot read the CPU affinity: ") + std::strerror(errno));
  }
  std::vector<int> allowed;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) {
      allowed.push_back(cpu);
    }
  }
  return allowed;
}

size_t size_thread_pool(long threads) {
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool == nullptr) {
    fail(kPlatform, "the ExecuTorch thread pool could not be created");
  }
  if (threads > 0 && !pool->_unsafe_reset_threadpool(static_cast<uint32_t>(threads))) {
    fail(kPlatform, "the ExecuTorch thread pool refused " + std::to_string(threads) + " threads");
  }
  return pool->get_thread_count();
}

// Input element i (counted over all inputs in order) is splitmix64(seed + (i + 1) * golden)'s
// top 24 bits scaled to [-1, 1): exact in float32, so Python reproduces it bit for bit
// (bench_runner/native_runner/inputs.py).
float input_value(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) / 16777216.0f * 2.0f - 1.0f;
}

std::string join(const std::vector<int>& values, const char* separator) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    text += (i ? separator : "") + std::to_string(values[i]);
  }
  return text;
}

struct Inputs {
  std::vector<std::vector<float>> data;
  std::vector<TensorPtr> tensors;
  std::vector<EValue> values;
};

Inputs make_inputs(const MethodMeta& meta, uint64_t seed) {
  Inputs inputs;
  inputs.data.reserve(meta.num_inputs());
  uint64_t index = 0;
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    auto tag = meta.input_tag(i);
    auto info = meta.input_tensor_meta(i);
    if (!tag.ok() || *tag != Tag::Tensor || !info.ok()) {
      fail(kUnsupportedIo, "input " + std::to_string(i) + " of '" + kMethod + "' is not a tensor");
    }
    if (info->scalar_type() != ScalarType::Float) {
      fail(kUnsupportedIo, "input " + std::to_string(i) + " is " +
                               executorch::runtime::toString(info->scalar_type()) +
                               "; the runner fills float32 inputs only");
    }
    std::vector<executorch::aten::SizesType> sizes(info->sizes().begin(), info->sizes().end());
    size_t elements = 1;
    for (auto size : sizes) {
      elements *= static_cast<size_t>(size);
    }
    std::vector<float>& values = inputs.data.emplace_back(elements);
    for (size_t e = 0; e < elements; ++e) {
      values[e] = input_value(seed, index++);
    }
    inputs.tensors.push_back(executorch::extension::from_blob(values.data(), sizes, ScalarType::Float));
    inputs.values.emplace_back(*inputs.tensors.back());
    std::printf("vitdeploy-runner input index=%zu shape=%s dtype=float32\n", i,
                join(std::vector<int>(sizes.begin(), sizes.end()), "x").c_str());
  }
  return inputs;
}

// One inference as the Python agent's session.run does it, minus Python: copy the inputs
// in (Method::set_input), Method::execute, collect the outputs.
std::vector<EValue> run_once(Module& module, const Inputs& inputs) {
  auto outputs = module.execute(kMethod, inputs.values);
  if (!outputs.ok()) {
    fail(kExecution, "executing '" + std::string(kMethod) + "' failed: " + describe(outputs.error()));
  }
  return std::move(*outputs);
}

void print_checksum(const std::vector<EValue>& outputs) {
  if (outputs.empty() || !outputs[0].isTensor()) {
    fail(kUnsupportedIo, "the first output of '" + std::string(kMethod) + "' is not a tensor");
  }
  const auto& tensor = outputs[0].toTensor();
  if (tensor.scalar_type() != ScalarType::Float) {
    fail(kUnsupportedIo, std::string("the first output is ") + executorch::runtime::toString(tensor.scalar_type()) +
                             "; the runner sums float32 outputs only");
  }
  const float* data = tensor.const_data_ptr<float>();
  double sum = 0.0, abs_sum = 0.0;
  for (ssize_t i = 0; i < tensor.numel(); ++i) {
    sum += data[i];
    abs_sum += std::fabs(static_cast<double>(data[i]));
  }
  std::printf("vitdeploy-runner checksum sum=%.17g abs_sum=%.17g elements=%zd\n", sum, abs_sum,
              static_cast<ssize_t>(tensor.numel()));
}

// The peak resident set of this program: VmHWM. getrusage's ru_maxrss is no use here, since
// Linux carries the spawning process's resident size over execve into it (a runner started
// from Python reports Python's size).
long peak_rss_kb() {
  long kb = -1;
  if (FILE* status = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (kb < 0 && std::fgets(line, sizeof(line), status)) {
      std::sscanf(line, "VmHWM: %ld kB", &kb);
    }
    std::fclose(status);
  }
  if (kb < 0) {
    fail(kPlatform, "cannot read VmHWM from /proc/self/status");
  }
  return kb;
}

}  // namespace

int main(int argc, char** argv) {
  bool version_only = argc == 2 && std::string(argv[1]) == "--version";
  Options options = version_only ? Options{} : parse_options(argc, argv);
  std::printf("vitdeploy-runner version format=%d executorch=%s\n", kFormat, VITDEPLOY_EXECUTORCH_VERSION);
  if (version_only) {
    return 0;
  }

  struct stat file;
  if (stat(options.model.c_str(), &file) != 0 || !S_ISREG(file.st_mode)) {
    fail(kModelMissing, "model file " + options.model + " does not exist or is not a regular file");
  }
  std::vector<int> cpus = pin_cpus(options.cpus);
  size_t threads = size_thread_pool(options.threads);
  std::printf("vitdeploy-runner setup threads=%zu cpus=%s input_seed=%" PRIu64 "\n", threads,
              join(cpus, ",").c_str(), options.seed);

  auto load_start = Clock::now();
  // Mapped, as ExecuTorch's Python runtime loads programs: LoadMode::File reads the whole
  // file first (about 9 ms more for DeiT-Tiny's 22 MB).
  Module module(options.model, Module::LoadMode::Mmap);
  Error error = module.load();
  if (error != Error::Ok) {
    fail(kProgramLoad, "cannot load the program " + options.model + ": " + describe(error));
  }
  error = module.load_method(kMethod);
  if (error != Error::Ok) {
    fail(kMethodLoad, "cannot load method '" + std::string(kMethod) + "': " + describe(error) +
                          "; the runtime's log above names the missing operator or delegate (this runner "
                          "links the optimized and quantized kernels and the XNNPACK delegate)");
  }
  std::printf("vitdeploy-runner load ms=%.6f\n", ms_since(load_start));

  auto meta = module.method_meta(kMethod);
  if (!meta.ok()) {
    fail(kMethodLoad, "cannot read the metadata of '" + std::string(kMethod) + "': " + describe(meta.error()));
  }
  Inputs inputs = make_inputs(*meta, options.seed);

  auto first_start = Clock::now();
  std::vector<EValue> outputs = run_once(module, inputs);
  std::printf("vitdeploy-runner first_inference ms=%.6f\n", ms_since(first_start));

  for (long i = 0; i < options.warmup; ++i) {
    outputs = run_once(module, inputs);
  }
  std::vector<double> samples(static_cast<size_t>(options.iterations));
  for (double& sample : samples) {
    auto start = Clock::now();
    outputs = run_once(module, inputs);
    sample = ms_since(start);
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    std::printf("vitdeploy-runner sample index=%zu ms=%.6f\n", i, samples[i]);
  }
  print_checksum(outputs);
  std::printf("vitdeploy-runner memory peak_rss_kb=%ld\n", peak_rss_kb());
  std::printf("vitdeploy-runner done warmup=%ld iterations=%ld\n", options.warmup, options.iterations);
  return 0;
}
