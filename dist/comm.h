// The communication layer of data-parallel training: the only code that
// talks MPI (Open MPI). Depends on engine/ only; the trainer calls it, and it
// installs the engine's process group (engine/collective.h) for the few
// collectives below the trainer (synchronised BatchNorm).
//
// Built without MPI (QKV_HAVE_MPI undefined), or run without a launcher, it is
// a world of one process: every collective returns at once with its input,
// and nothing here costs a single-process run anything.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "engine/error.h"

namespace qkv::dist {

bool built_with_mpi();
// The process count the launcher announced in the environment (mpirun's
// OMPI_COMM_WORLD_SIZE, PMI_SIZE of other launchers); 1 without a launcher.
int launched_size();

// Starts MPI when built with it and launched by mpirun (else nothing), and
// installs the process group. finalize() ends it; both are idempotent.
void init(int* argc, char*** argv);
void finalize();

int rank();        // 0 .. size() - 1
int size();        // processes in the job
int local_size();  // processes of the job on this machine
bool writer();     // rank 0: the one process that writes files and prints

// In place, p[0..n) becomes the sum over the ranks, the same on every rank.
void allreduce_sum(float* p, int64_t n);
void allreduce_sum(double* p, int64_t n);
// Named sums (evaluation): the union of the names over the ranks, each summed
// (a name a rank lacks counts 0 there). Afterwards equal on every rank.
void allreduce_sum(std::map<std::string, double>& sums);
void broadcast(float* p, int64_t n, int root);

// An error every rank raises at the same point, having agreed on it through
// a collective (a non-finite loss on one rank): no rank is left waiting for a
// peer, so the job ends in order (finalize, exit 1) rather than by abort_job,
// rank 0 alone reporting it as about `rank`.
struct JobError : Error {
  JobError(int rank_at_fault, const std::string& what) : Error(what), rank(rank_at_fault) {}
  int rank;
};

// Ends the whole job with exit code `code` (MPI_Abort under mpirun, else exit).
[[noreturn]] void abort_job(int code);

// Counters of the float all-reduces (the gradients), for the benchmark.
struct CommStats {
  int64_t calls = 0;
  int64_t bytes = 0;   // payload bytes of this rank
  double seconds = 0;  // wall time inside the calls (waiting included)
  double last = 0;     // wall time of the latest call
};
CommStats& stats();

}  // namespace qkv::dist
