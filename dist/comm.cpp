// MPI behind dist/comm.h, or a world of one process when built without it.
#include "dist/comm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <vector>

#include "engine/collective.h"
#include "engine/error.h"

#ifdef QKV_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings warn and are deprecated)
#include <mpi.h>
#endif

namespace qkv::dist {
namespace {

struct World {
  bool mpi = false;  // MPI_Init was called by us
  int rank = 0, size = 1, local_size = 1;
};
World g_world;

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : 0;
}

#ifdef QKV_HAVE_MPI
// The engine's view of the job (synchronised BatchNorm's statistics).
class MpiGroup final : public ProcessGroup {
 public:
  int size() const override { return g_world.size; }
  void allreduce_sum(double* p, int64_t n) override { dist::allreduce_sum(p, n); }
};
MpiGroup g_group;

// MPI counts are int: long buffers go in pieces.
template <class T>
void allreduce_chunks(T* p, int64_t n, MPI_Datatype type) {
  constexpr int64_t kChunk = int64_t(1) << 30;
  for (int64_t i = 0; i < n; i += kChunk)
    MPI_Allreduce(MPI_IN_PLACE, p + i, int(std::min(kChunk, n - i)), type, MPI_SUM, MPI_COMM_WORLD);
}
#endif

}  // namespace

bool built_with_mpi() {
#ifdef QKV_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int launched_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const int n = env_int(name); n > 0) return n;
  return 1;
}

void init(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
#ifdef QKV_HAVE_MPI
  if (g_world.mpi || launched_size() <= 1) return;  // alone: no MPI at all
  int started = 0;
  MPI_Initialized(&started);
  if (!started) MPI_Init(argc, argv);
  g_world.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world.size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &g_world.local_size);
  MPI_Comm_free(&local);
  set_process_group(&g_group);
#endif
}

void finalize() {
#ifdef QKV_HAVE_MPI
  if (!g_world.mpi) return;
  set_process_group(nullptr);
  MPI_Finalize();
  g_world = World{};
#endif
}

int rank() { return g_world.rank; }
int size() { return g_world.size; }
int local_size() { return g_world.local_size; }
bool writer() { return g_world.rank == 0; }

void allreduce_sum(float* p, int64_t n) {
  if (g_world.size == 1) return;
#ifdef QKV_HAVE_MPI
  const auto t0 = std::chrono::steady_clock::now();
  allreduce_chunks(p, n, MPI_FLOAT);
  CommStats& s = stats();
  s.calls += 1;
  s.bytes += n * int64_t(sizeof(float));
  s.last = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.seconds += s.last;
#else
  (void)p, (void)n;
#endif
}

void allreduce_sum(double* p, int64_t n) {
  if (g_world.size == 1) return;
#ifdef QKV_HAVE_MPI
  allreduce_chunks(p, n, MPI_DOUBLE);
#else
  (void)p, (void)n;
#endif
}

void allreduce_sum(std::map<std::string, double>& sums) {
  if (g_world.size == 1) return;
#ifdef QKV_HAVE_MPI
  // The names: every rank's, gathered as one '\n'-joined string per rank.
  std::string mine;
  for (const auto& [k, _] : sums) mine += k + '\n';
  int len = int(mine.size());
  std::vector<int> lens(size_t(g_world.size)), offs(size_t(g_world.size));
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int total = 0;
  for (size_t r = 0; r < lens.size(); ++r) offs[r] = total, total += lens[r];
  std::string all(size_t(total), '\0');
  MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR,
                 MPI_COMM_WORLD);
  std::set<std::string> names;
  for (size_t a = 0, b; a < all.size(); a = b + 1) {
    b = all.find('\n', a);
    names.insert(all.substr(a, b - a));
  }
  std::vector<double> v;
  for (const auto& k : names) v.push_back(sums.count(k) ? sums.at(k) : 0.0);
  allreduce_sum(v.data(), int64_t(v.size()));
  size_t i = 0;
  for (const auto& k : names) sums[k] = v[i++];
#else
  (void)sums;
#endif
}

void broadcast(float* p, int64_t n, int root) {
  if (g_world.size == 1) return;
#ifdef QKV_HAVE_MPI
  constexpr int64_t kChunk = int64_t(1) << 30;
  for (int64_t i = 0; i < n; i += kChunk)
    MPI_Bcast(p + i, int(std::min(kChunk, n - i)), MPI_FLOAT, root, MPI_COMM_WORLD);
#else
  (void)p, (void)n, (void)root;
#endif
}

void abort_job(int code) {
#ifdef QKV_HAVE_MPI
  if (g_world.mpi && g_world.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

CommStats& stats() {
  static CommStats s;
  return s;
}

}  // namespace qkv::dist
