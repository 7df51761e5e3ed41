// gpu_kernel — your own ring kernel on a GPU, supervised, with the CPU as its fallback.
//
//   1. kernels.cu adds ClampKernel (examples/custom_kernel/clamp_kernel.hpp) to the GPU kernel table
//      with RINGFLOW_CUDA_KERNELS.
//   2. Open the CUDA device: one persistent kernel that will host every ring actor placed on it.
//      No usable device ("insufficient driver", no driver, zero devices) is not an error: the ring
//      actor runs on the CPU backend, from the same kernel source.
//   3. Spawn the ring actor under the fault ladder: the device's factory for "clamp" first, the
//      CPU backend's as the fallback (a sticky GPU fault reroutes there, nothing lost).
//   4. Call it from any thread and check every reply against the same computation on the host.
//
// Usage: ringflow_gpu_kernel [requests]   Exit code 0 when every reply is right.
#include <flatbuffers/flatbuffers.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "../custom_kernel/clamp_kernel.hpp"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/ringflow.hpp"
#include "ringflow/supervision/fault_ladder.hpp"

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 2000;
  ringflow::runtime_config cfg;
  cfg.scheduler_threads = 2;
  ringflow::runtime rt{cfg};
  ringflow::fault_ladder ladder(rt);

  // 2. The device, or the reason there is none.
  std::shared_ptr<ringflow::gpu::gpu_device> dev;
  const ringflow::gpu::gpu_probe probe = ringflow::gpu::probe_cuda();
  if (probe.usable) {
    dev = ringflow::gpu::make_cuda_device();
    std::printf("gpu_kernel: %s (%s), kernels:", dev->info().name.c_str(), dev->info().arch.c_str());
    for (const std::string& k : dev->kernels()) std::printf(" %s", k.c_str());
    std::printf("\n");
  } else {
    std::printf("gpu_kernel: no usable CUDA device (%s): the CPU backend serves clamp\n", probe.detail.c_str());
  }

  // 3. The ring actor: on the GPU under the ladder, or on the CPU.
  using K = example::ClampKernel;
  if (dev)
    ladder.spawn_ring_actor("clamp", K::request::type_id_, K::reply::type_id_, dev, dev->factory<K>(),
                            ringflow::cpu_incarnation_factory<K>());
  else rt.spawn_ring_actor("clamp", K::request::type_id_, K::reply::type_id_, ringflow::cpu_incarnation_factory<K>());

  // 4. Calls, each reply checked.
  ringflow::ring_client client = rt.client("clamp").value();
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> d(-10.0f, 10.0f);
  int wrong = 0, errors = 0;
  for (int i = 0; i < requests; ++i) {
    const float bound = 1.0f + static_cast<float>(i % 5);
    std::vector<float> x(1 + rng() % 32);
    for (float& v : x) v = d(rng);
    flatbuffers::FlatBufferBuilder b;
    ringflow::demo::FinishSaxpyRequestBuffer(b, ringflow::demo::CreateSaxpyRequest(b, bound, b.CreateVector(x)));
    const ringflow::call_result r = client.call(ringflow::fb_msg(b.GetBufferPointer(), b.GetSize()));
    if (!r.ok()) {
      ++errors;
      continue;
    }
    const auto* y = ringflow::demo::GetSaxpyReply(r.reply.bytes.data())->y();
    bool same = y && y->size() == x.size();
    for (std::size_t j = 0; same && j < x.size(); ++j)
      same = y->Get(static_cast<flatbuffers::uoffset_t>(j)) == (x[j] > bound ? bound : (x[j] < -bound ? -bound : x[j]));
    wrong += same ? 0 : 1;
  }
  const std::string backend = rt.ring("clamp")->backend();
  std::printf("gpu_kernel: %d requests on %s: wrong replies: %d, errors: %d\n", requests, backend.c_str(), wrong,
              errors);
  if (wrong || errors) return 1;
  std::printf("gpu_kernel: OK\n");
  return 0;
}
